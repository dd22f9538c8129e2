#!/usr/bin/env python3
"""Extract what a vLLM release accepts from its PyPI wheel, without importing vLLM.

    python tools/vllm_wheel_facts.py WHEEL_OR_VERSION [-o OUT.json] [--wheel-dir DIR]

WHEEL_OR_VERSION is a path to a vllm-*.whl, or a version such as 0.28.0: the wheel is then looked
for in --wheel-dir (default $VLLM_WHEEL_DIR or /work/.cache-wheels) and downloaded there with
`pip download vllm==X --no-deps --only-binary=:all:` when missing.

The wheel is read as a zip and its Python source parsed with `ast`; nothing from it is imported or
run (no torch needed). Extracted, for that version:

* flags: every `vllm serve` option. The parser is followed the way vLLM builds it: from
  vllm/entrypoints/cli/serve.py (`ServeSubcommand.subparser_init`) into `make_arg_parser`
  (vllm/entrypoints/openai/cli_args.py; vllm/entrypoints/launchers/cli_args.py in 0.32), the
  frontend args class (`add_cli_args` loops over the dataclass fields of FrontendArgs) and
  `AsyncEngineArgs.add_cli_args` / `EngineArgs.add_cli_args`, whose `get_kwargs(SomeConfig)`
  results are rebuilt from the config dataclass field annotations with the same if/elif chain as
  that release's `_compute_kwargs` (read from vllm/engine/arg_utils.py, not assumed): boolean
  fields become argparse.BooleanOptionalAction (so `--no-X` exists too), `Literal[...]` fields
  without `str` get argparse `choices`. Values checked after parsing are added as choices with
  `"checked": "after parsing"`: --attention-backend (the backend enum's member names, parsed by the
  config's field validator) and --quantization (QUANTIZATION_METHODS, checked by ModelConfig).
* env_vars: the keys of vllm/envs.py `environment_variables`.
* tool_call_parsers / reasoning_parsers: names registered in the parser package's __init__ (the
  lazy `_..._TO_REGISTER` dict fed to `register_lazy_module`, direct `register_lazy_module` calls,
  and `@...Manager.register_module(...)` decorators of modules that __init__ imports).
* speculative_methods: the values of the `Literal` that types `SpeculativeConfig.method`
  (vllm/config/speculative.py), nested Literal aliases flattened; speculative_config_keys: the
  fields of SpeculativeConfig (a pydantic dataclass; a note says when the wheel's @config does not
  visibly forbid unknown keys, as in 0.12.0 ... 0.15.1).

Where a category cannot be extracted the value is null and "notes" says why; nothing is guessed.

Checked once against vLLM's own parser: for 0.32.0 the option set, the argparse choices, the parser
registries, envs.environment_variables, SpeculativeMethod and the SpeculativeConfig fields equal
what an installed vLLM 0.32.0 builds, except --mm-processor-device, whose choices depend on the
platform at run time (reported as "choices_dynamic").
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DEFAULT_WHEEL_DIR = os.environ.get("VLLM_WHEEL_DIR", "/work/.cache-wheels")
SCHEMA_VERSION = 1


class Unknown:
    """A value the static reading cannot know."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "UNKNOWN"


UNKNOWN = Unknown()
BOOL_ACTION = "argparse.BooleanOptionalAction"
DYNAMIC = "<dynamic>"


class ExtractionError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The wheel as a package of modules
# --------------------------------------------------------------------------------------------


class Wheel:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path)
        self.names = set(self.zip.namelist())
        self._trees: dict[str, ast.Module | None] = {}
        self._symbols: dict[str, dict[str, tuple]] = {}

    def version(self) -> str:
        for name in self.names:
            if name.endswith(".dist-info/METADATA"):
                for line in self.zip.read(name).decode("utf-8", "replace").splitlines():
                    if line.startswith("Version:"):
                        return line.split(":", 1)[1].strip()
        m = re.match(r"vllm-([^-]+)-", self.path.name)
        if m:
            return m.group(1)
        raise ExtractionError("no version in the wheel's METADATA or file name")

    def module_file(self, modname: str) -> str | None:
        base = modname.replace(".", "/")
        for cand in (base + ".py", base + "/__init__.py"):
            if cand in self.names:
                return cand
        return None

    def is_package_dir(self, modname: str) -> bool:
        prefix = modname.replace(".", "/") + "/"
        return any(n.startswith(prefix) for n in self.names)

    def tree(self, modname: str) -> ast.Module | None:
        if modname not in self._trees:
            path = self.module_file(modname)
            self._trees[modname] = ast.parse(self.zip.read(path), filename=path) if path else None
        return self._trees[modname]

    # ---- symbol tables -----------------------------------------------------------------

    def symbols(self, modname: str) -> dict[str, tuple]:
        """name -> binding, runtime view: ('def', node) | ('assign', expr) | ('import', mod, attr)
        | ('module', mod). `if TYPE_CHECKING:` bindings only fill names nothing else binds."""
        if modname in self._symbols:
            return self._symbols[modname]
        table: dict[str, tuple] = {}
        weak: dict[str, tuple] = {}
        self._symbols[modname] = table
        tree = self.tree(modname)
        if tree is not None:
            self._collect(tree.body, modname, table, weak)
        for k, v in weak.items():
            table.setdefault(k, v)
        return table

    def _collect(self, body: list[ast.stmt], modname: str, table: dict, weak: dict) -> None:
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                table[node.name] = ("def", node)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        table[t.id] = ("assign", node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
                table[node.target.id] = ("assign", node.value)
            elif isinstance(node, ast.ImportFrom):
                src = self._absolute(modname, node.module, node.level)
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    table[alias.asname or alias.name] = ("import", src, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        table[alias.asname] = ("module", alias.name)
                    else:
                        top = alias.name.split(".")[0]
                        table[top] = ("module", top)
            elif isinstance(node, ast.If):
                if _is_type_checking(node.test):
                    self._collect(node.body, modname, weak, weak)
                    self._collect(node.orelse, modname, table, weak)
                else:
                    self._collect(node.body, modname, table, weak)
                    self._collect(node.orelse, modname, table, weak)
            elif isinstance(node, ast.Try):
                self._collect(node.body, modname, table, weak)
                for h in node.handlers:
                    self._collect(h.body, modname, weak, weak)

    def _absolute(self, modname: str, module: str | None, level: int) -> str:
        if not level:
            return module or ""
        parts = modname.split(".")
        is_pkg = (self.module_file(modname) or "").endswith("__init__.py")
        base = parts if is_pkg else parts[:-1]
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join(base + ([module] if module else []))

    def resolve(self, modname: str, name: str, _depth: int = 0) -> Ref:
        """What `name` is bound to at module level in `modname`."""
        if _depth > 30:
            return External(f"{modname}.{name}")
        if self.tree(modname) is None:
            if self.module_file(f"{modname}.{name}") or self.is_package_dir(f"{modname}.{name}"):
                return ModuleRef(f"{modname}.{name}")
            return External(f"{modname}.{name}")
        binding = self.symbols(modname).get(name)
        if binding is None:
            if self.module_file(f"{modname}.{name}"):
                return ModuleRef(f"{modname}.{name}")
            if name in _BUILTIN_NAMES:
                return Builtin(name)
            return External(f"{modname}.{name}")
        kind = binding[0]
        if kind == "def":
            node = binding[1]
            if isinstance(node, ast.ClassDef):
                return ClassRef(modname, node)
            return FuncRef(modname, node)
        if kind == "assign":
            return AliasRef(modname, name, binding[1])
        if kind == "module":
            return ModuleRef(binding[1]) if self.is_package_dir(binding[1]) or self.module_file(binding[1]) \
                else External(binding[1])
        _, src, attr = binding
        if self.module_file(f"{src}.{attr}"):
            return ModuleRef(f"{src}.{attr}")
        if self.module_file(src):
            return self.resolve(src, attr, _depth + 1)
        return External(f"{src}.{attr}")

    def resolve_expr(self, expr: ast.expr, modname: str) -> Ref:
        if isinstance(expr, ast.Name):
            return self.resolve(modname, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.resolve_expr(expr.value, modname)
            if isinstance(base, ModuleRef):
                return self.resolve(base.modname, expr.attr)
            if isinstance(base, ClassRef):
                member = self.class_member(base, expr.attr)
                if member is not None:
                    return member[1]
            if isinstance(base, External):
                return External(f"{base.name}.{expr.attr}")
        return External(ast.unparse(expr))

    # ---- classes -----------------------------------------------------------------------

    def bases(self, cls: ClassRef) -> list[Ref]:
        return [self.resolve_expr(b, cls.modname) for b in cls.node.bases]

    def mro(self, cls: ClassRef) -> list[ClassRef]:
        """Depth-first, left-to-right over the classes found in the wheel (enough for vLLM's
        single-inheritance config and args classes)."""
        out: list[ClassRef] = []
        seen: set[tuple[str, str]] = set()

        def walk(c: ClassRef) -> None:
            if c.key in seen:
                return
            seen.add(c.key)
            out.append(c)
            for b in self.bases(c):
                if isinstance(b, ClassRef):
                    walk(b)

        walk(cls)
        return out

    def class_member(self, cls: ClassRef, name: str, after: ClassRef | None = None):
        """(defining class, Ref) of attribute `name` looked up along the MRO (after `after`)."""
        mro = self.mro(cls)
        if after is not None:
            keys = [c.key for c in mro]
            mro = mro[keys.index(after.key) + 1:] if after.key in keys else []
        for c in mro:
            for node in c.node.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                    return c, FuncRef(c.modname, node, owner=c)
                if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name
                                                        for t in node.targets):
                    return c, AliasRef(c.modname, name, node.value)
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and node.target.id == name and node.value is not None:
                    return c, AliasRef(c.modname, name, node.value)
        return None

    def is_dataclass(self, cls: ClassRef) -> bool:
        for c in self.mro(cls):
            for d in c.node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                text = ast.unparse(target)
                if text.split(".")[-1] in ("dataclass", "config"):
                    return True
        return False

    def is_enum(self, cls: ClassRef) -> bool:
        for b in self.bases(cls):
            if isinstance(b, External) and b.name.split(".")[-1] in ("Enum", "IntEnum", "StrEnum"):
                return True
            if isinstance(b, Builtin):
                continue
            if isinstance(b, ClassRef) and b.key != cls.key and self.is_enum(b):
                return True
        return False

    def dataclass_fields(self, cls: ClassRef, init_only: bool = False) -> list[tuple[str, ast.expr, str]]:
        """(name, annotation, module of the annotation) in dataclasses.fields() order."""
        chain = list(reversed(self.mro(cls)))
        fields: dict[str, tuple[str, ast.expr, str]] = {}
        for c in chain:
            for node in c.node.body:
                if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                    ann = node.annotation
                    head = ann.value if isinstance(ann, ast.Subscript) else ann
                    head_text = ast.unparse(head).split(".")[-1]
                    if head_text in ("ClassVar", "InitVar"):
                        continue
                    name = node.target.id
                    if init_only and isinstance(node.value, ast.Call) and any(
                            k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False
                            for k in node.value.keywords):
                        fields.pop(name, None)
                        continue
                    fields[name] = (name, ann, c.modname)  # re-declared fields keep their slot
        return list(fields.values())

    def enum_members(self, cls: ClassRef) -> list[str]:
        out = []
        for node in cls.node.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and not t.id.startswith("_"):
                        out.append(t.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value \
                    and not node.target.id.startswith("_"):
                out.append(node.target.id)
        return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


_BUILTIN_NAMES = {"bool", "str", "int", "float", "dict", "list", "tuple", "set", "frozenset", "bytes",
                  "object", "type", "None"}


class Ref:
    pass


class ModuleRef(Ref):
    def __init__(self, modname: str) -> None:
        self.modname = modname


class ClassRef(Ref):
    def __init__(self, modname: str, node: ast.ClassDef) -> None:
        self.modname, self.node = modname, node

    @property
    def key(self) -> tuple[str, str]:
        return (self.modname, self.node.name)

    @property
    def name(self) -> str:
        return self.node.name


class FuncRef(Ref):
    def __init__(self, modname: str, node: ast.FunctionDef, owner: ClassRef | None = None) -> None:
        self.modname, self.node, self.owner = modname, node, owner


class AliasRef(Ref):
    def __init__(self, modname: str, name: str, value: ast.expr) -> None:
        self.modname, self.name, self.value = modname, name, value


class External(Ref):
    def __init__(self, name: str) -> None:
        self.name = name


class Builtin(Ref):
    def __init__(self, name: str) -> None:
        self.name = name


# --------------------------------------------------------------------------------------------
# Type annotations -> the set of type hints `get_type_hints` (arg_utils) would see
# --------------------------------------------------------------------------------------------

_TYPING_GENERIC = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Set": "set", "FrozenSet": "frozenset",
                   "Sequence": "Sequence", "Mapping": "Mapping"}


class Atom:
    """One member of a field's type hint set. kind: builtin | literal | generic | class | any."""

    def __init__(self, kind: str, name: str = "", values: list | None = None, args: list | None = None,
                 ref: Ref | None = None, module: str = "builtins") -> None:
        self.kind, self.name, self.values, self.args, self.ref, self.module = kind, name, values, args, ref, module

    def __repr__(self) -> str:  # pragma: no cover
        return f"Atom({self.kind},{self.name},{self.values})"


class TypeReader:
    def __init__(self, wheel: Wheel) -> None:
        self.w = wheel

    def hints(self, expr: ast.expr, modname: str, depth: int = 0) -> list[Atom]:
        if depth > 25:
            return [Atom("class", "<too deep>", module="?")]
        w = self.w
        if isinstance(expr, ast.Constant):
            if expr.value is None:
                return [Atom("builtin", "NoneType")]
            if isinstance(expr.value, str):
                try:
                    return self.hints(ast.parse(expr.value, mode="eval").body, modname, depth + 1)
                except SyntaxError:
                    return [Atom("class", expr.value, module="?")]
            return [Atom("class", repr(expr.value), module="?")]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.BitOr):
            return self.hints(expr.left, modname, depth + 1) + self.hints(expr.right, modname, depth + 1)
        if isinstance(expr, ast.Subscript):
            head = self._head(expr.value, modname)
            items = expr.slice.elts if isinstance(expr.slice, ast.Tuple) else [expr.slice]
            if head == "Literal":
                return [Atom("literal", "Literal", values=self.literal_values(items, modname, depth), module="typing")]
            if head in ("Union",):
                return [a for it in items for a in self.hints(it, modname, depth + 1)]
            if head == "Optional":
                return self.hints(items[0], modname, depth + 1) + [Atom("builtin", "NoneType")]
            if head == "Annotated":
                return self.hints(items[0], modname, depth + 1)
            if head in ("list", "dict", "tuple", "set", "frozenset") or head in _TYPING_GENERIC:
                origin = _TYPING_GENERIC.get(head, head)
                module = "builtins" if head in ("list", "dict", "tuple", "set", "frozenset") else "typing"
                args = [self.hints(it, modname, depth + 1) if not (isinstance(it, ast.Constant)
                                                                    and it.value is Ellipsis) else "..."
                        for it in items]
                return [Atom("generic", origin, args=args, module=module)]
            return [Atom("class", ast.unparse(expr), module="?")]
        if isinstance(expr, (ast.Name, ast.Attribute)):
            text = ast.unparse(expr)
            if isinstance(expr, ast.Name) and expr.id in _BUILTIN_NAMES \
                    and w.symbols(modname).get(expr.id) is None:  # not shadowed by the module
                return [Atom("builtin", expr.id)]
            if text.split(".")[-1] == "Any":
                return [Atom("any", "Any", module="typing")]
            ref = w.resolve_expr(expr, modname)
            if isinstance(ref, AliasRef):
                return self.hints(ref.value, ref.modname, depth + 1)
            if isinstance(ref, ClassRef):
                kind = "dataclass" if w.is_dataclass(ref) else ("enum" if w.is_enum(ref) else "class")
                return [Atom(kind, ref.name, ref=ref, module=ref.modname)]
            if isinstance(ref, Builtin):
                return [Atom("builtin", ref.name)]
            if isinstance(ref, External):
                last = ref.name.split(".")[-1]
                if last in _BUILTIN_NAMES:
                    return [Atom("builtin", last)]
                if last == "Any":
                    return [Atom("any", "Any", module="typing")]
                return [Atom("class", ref.name, module=ref.name.rsplit(".", 1)[0])]
            return [Atom("class", text, module="?")]
        return [Atom("class", ast.unparse(expr), module="?")]

    def _head(self, expr: ast.expr, modname: str) -> str:
        text = ast.unparse(expr).split(".")[-1]
        if text in ("Literal", "Union", "Optional", "Annotated", "list", "dict", "tuple", "set", "frozenset") \
                or text in _TYPING_GENERIC:
            return text
        return ast.unparse(expr)

    def literal_values(self, items: list[ast.expr], modname: str, depth: int) -> list:
        values: list = []
        for it in items:
            if isinstance(it, ast.Constant):
                values.append(it.value)
                continue
            nested = self.hints(it, modname, depth + 1)  # Literal[..., OtherLiteral] flattens
            for atom in nested:
                if atom.kind != "literal":
                    raise ExtractionError(f"Literal member {ast.unparse(it)} in {modname} is not a Literal")
                values.extend(atom.values or [])
        return values

    def literal_of(self, expr: ast.expr, modname: str) -> list | None:
        atoms = self.hints(expr, modname)
        lits = [a for a in atoms if a.kind == "literal"]
        if not lits:
            return None
        return [v for a in lits for v in a.values]


# --------------------------------------------------------------------------------------------
# get_kwargs(Config) as that release's arg_utils builds it
# --------------------------------------------------------------------------------------------


def _is_builtin_atom(a: Atom) -> bool:
    return a.module == "builtins"


def _contains(atoms: list[Atom], t: str) -> bool:
    for a in atoms:
        if t == "Literal" and a.kind == "literal":
            return True
        if a.kind == "builtin" and a.name == t:
            return True
        if a.kind == "generic" and a.name == t:
            return True
    return False


class KwargsModel:
    """The if/elif chain of `_compute_kwargs` (or `get_kwargs`) in vllm/engine/arg_utils.py, read
    from the wheel and evaluated on a field's type hints."""

    MODULE = "vllm.engine.arg_utils"

    def __init__(self, wheel: Wheel) -> None:
        self.w = wheel
        tree = wheel.tree(self.MODULE)
        if tree is None:
            raise ExtractionError("vllm/engine/arg_utils.py not in the wheel")
        funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        fn = None
        for name in ("_compute_kwargs", "get_kwargs"):
            cand = funcs.get(name)
            if cand is not None and "fields(cls)" in ast.unparse(cand):
                fn = cand
                break
        if fn is None:
            raise ExtractionError("no get_kwargs/_compute_kwargs looping over fields(cls) in arg_utils.py")
        self.func_name = fn.name
        chain_head = None
        for node in ast.walk(fn):
            if isinstance(node, ast.If) and "dataclass_cls" in ast.unparse(node.test):
                chain_head = node
                break
        if chain_head is None:
            raise ExtractionError(f"{fn.name}: no if/elif chain starting at the dataclass test")
        self.chain: list[tuple[ast.expr, str]] = []
        node: ast.stmt | None = chain_head
        while isinstance(node, ast.If):
            self.chain.append((node.test, self._classify(node.body)))
            node = node.orelse[0] if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) else None
        src = ast.unparse(fn)
        self.sequence_of_literals = "literal_to_kwargs({kwargs[name]['type']})" in src
        # 'None' on the command line is accepted: older releases append the string, newer None
        # itself (optional_type turns "None" into None before argparse checks choices).
        self.none_choice = (".append('None')" in src or ".append(None)" in src) and "type(None) in type_hints" in src
        lit = funcs.get("literal_to_kwargs")
        lit_src = ast.unparse(lit) if lit is not None else ""
        self.metavar_if_str = "'metavar' if contains_type(type_hints, str) else 'choices'" in lit_src
        if not lit_src or ("choices" not in lit_src):
            raise ExtractionError("literal_to_kwargs not found or does not set choices")
        self.types = TypeReader(wheel)

    @staticmethod
    def _classify(body: list[ast.stmt]) -> str:
        text = "\n".join(ast.unparse(s) for s in body)
        if "BooleanOptionalAction" in text:
            return "bool"
        if "literal_to_kwargs" in text:
            return "literal"
        if "collection_to_kwargs" in text:
            return "collection"
        if "parse_dataclass" in text:
            return "dataclass"
        return "other"

    def _cond(self, test: ast.expr, atoms: list[Atom]) -> bool:
        if isinstance(test, ast.BoolOp):
            vals = [self._cond(v, atoms) for v in test.values]
            return all(vals) if isinstance(test.op, ast.And) else any(vals)
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return not self._cond(test.operand, atoms)
        text = ast.unparse(test)
        if text == "dataclass_cls is not None":
            return any(a.kind == "dataclass" for a in atoms)
        m = re.fullmatch(r"type_hints == \{(.*)\}", text)
        if m:
            want = {p.strip() for p in m.group(1).split(",")}
            want = {"NoneType" if p == "type(None)" else p for p in want}
            have = set()
            for a in atoms:
                if a.kind != "builtin":
                    return False
                have.add(a.name)
            return have == want
        m = re.fullmatch(r"contains_type\(type_hints, (\w+)\)", text)
        if m:
            return _contains(atoms, m.group(1))
        flat = re.sub(r"[()\s]", "", text)
        if flat == "anyis_not_builtinthforthintype_hints":
            return any(not _is_builtin_atom(a) for a in atoms)
        raise ExtractionError(f"{self.func_name}: condition not understood: {text}")

    def field(self, annotation: ast.expr, modname: str, name: str) -> dict[str, Any]:
        """argparse-relevant kwargs of one dataclass field: action (bool) and choices."""
        atoms = self.types.hints(annotation, modname)
        kind = "other"
        for test, k in self.chain:
            if self._cond(test, atoms):
                kind = k
                break
        out: dict[str, Any] = {"_atoms": atoms, "_field": name}
        if kind == "bool":
            out["action"] = BOOL_ACTION
            return out
        choices = None
        if kind == "literal":
            lits = [v for a in atoms if a.kind == "literal" for v in a.values]
            if not (self.metavar_if_str and _contains(atoms, "str")):
                choices = lits
            else:
                out["metavar_values"] = sorted(lits, key=str)
        elif kind == "collection" and self.sequence_of_literals:
            for a in atoms:
                if a.kind == "generic" and a.name in ("list", "tuple", "set") and a.args:
                    elem = a.args[0]
                    if isinstance(elem, list) and len(elem) == 1 and elem[0].kind == "literal":
                        choices = list(elem[0].values)
        if choices is not None:
            choices = sorted(choices, key=str)
            if self.none_choice and _contains(atoms, "NoneType") and not _contains(atoms, "bool"):
                choices.append("None")
            out["choices"] = choices
        return out


# --------------------------------------------------------------------------------------------
# Following the `vllm serve` parser construction
# --------------------------------------------------------------------------------------------


class KwargsMap(dict):
    """What get_kwargs(cls) returns: field name -> kwargs dict."""

    def __init__(self, cls: ClassRef, fields: dict[str, dict]) -> None:
        super().__init__(fields)
        self.cls = cls


class ParserObj:
    pass


class Instance:
    def __init__(self, cls: ClassRef) -> None:
        self.cls = cls


class BoundMethod:
    def __init__(self, func: FuncRef, cls_ctx: ClassRef | None, self_obj: Any = None) -> None:
        self.func, self.cls_ctx, self.self_obj = func, cls_ctx, self_obj


class SuperObj:
    def __init__(self, defining: ClassRef, cls_ctx: ClassRef) -> None:
        self.defining, self.cls_ctx = defining, cls_ctx


class Frame:
    def __init__(self, modname: str, env: dict[str, Any], owner: ClassRef | None, cls_ctx: ClassRef | None) -> None:
        self.modname, self.env, self.owner, self.cls_ctx = modname, env, owner, cls_ctx
        self.returned: Any = UNKNOWN


class ParserReader:
    def __init__(self, wheel: Wheel) -> None:
        self.w = wheel
        self.kw = KwargsModel(wheel)
        self.flags: dict[str, dict[str, Any]] = {}
        self.files: set[str] = set()
        self.notes: list[str] = []
        self._stack: list[tuple[str, str]] = []

    # ---- entry ---------------------------------------------------------------------------

    def read(self) -> None:
        serve = "vllm.entrypoints.cli.serve"
        tree = self.w.tree(serve)
        if tree is not None:
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and node.name == "ServeSubcommand":
                    cls = ClassRef(serve, node)
                    member = self.w.class_member(cls, "subparser_init")
                    if member is not None:
                        self.call_function(member[1], [ParserObj()], {}, cls_ctx=cls, self_obj=Instance(cls))
                        return
        ref = self.w.resolve("vllm.entrypoints.openai.cli_args", "make_arg_parser")
        if isinstance(ref, FuncRef):
            self.notes.append("flags: no ServeSubcommand in vllm/entrypoints/cli/serve.py; read "
                              "vllm/entrypoints/openai/cli_args.py make_arg_parser")
            self.call_function(ref, [ParserObj()], {})
            return
        raise ExtractionError("neither ServeSubcommand.subparser_init nor make_arg_parser found")

    # ---- functions -----------------------------------------------------------------------

    def call_function(self, func: FuncRef, args: list, kwargs: dict, cls_ctx: ClassRef | None = None,
                      self_obj: Any = None) -> Any:
        key = (func.modname, f"{func.owner.name if func.owner else ''}.{func.node.name}")
        if key in self._stack or len(self._stack) > 20:
            return UNKNOWN
        node = func.node
        decorators = {ast.unparse(d) for d in node.decorator_list}
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        env: dict[str, Any] = {}
        if "classmethod" in decorators:
            args = [cls_ctx or func.owner] + list(args)
        elif func.owner is not None and "staticmethod" not in decorators and self_obj is not None \
                and (not args or args[0] is not self_obj):
            args = [self_obj] + list(args)
        for p, v in zip(params, args):
            env[p] = v
        defaults = node.args.defaults
        for p, d in zip(params[len(params) - len(defaults):], defaults):
            env.setdefault(p, self.const(d, Frame(func.modname, {}, None, None)))
        env.update({k: v for k, v in kwargs.items() if k in params})
        path = self.w.module_file(func.modname)
        if path:
            self.files.add(path)
        frame = Frame(func.modname, env, func.owner, cls_ctx or func.owner)
        self._stack.append(key)
        try:
            self.exec_body(node.body, frame)
        finally:
            self._stack.pop()
        return frame.returned

    def exec_body(self, body: list[ast.stmt], f: Frame) -> None:
        for st in body:
            self.exec_stmt(st, f)

    def exec_stmt(self, st: ast.stmt, f: Frame) -> None:
        if isinstance(st, ast.Expr):
            self.eval(st.value, f)
        elif isinstance(st, ast.Assign):
            value = self.eval(st.value, f)
            for t in st.targets:
                self.assign(t, value, st.value, f)
        elif isinstance(st, ast.AnnAssign) and st.value is not None:
            self.assign(st.target, self.eval(st.value, f), st.value, f)
        elif isinstance(st, ast.AugAssign):
            if isinstance(st.target, ast.Subscript):
                obj = self.eval(st.target.value, f)
                key = self.const(st.target.slice, f)
                if isinstance(obj, dict) and key == "choices":
                    add = self.const(st.value, f)
                    if isinstance(add, list) and isinstance(obj.get("choices"), list):
                        obj["choices"] = obj["choices"] + add
                    else:
                        obj["choices_dynamic"] = True
        elif isinstance(st, ast.Delete):
            for t in st.targets:
                if isinstance(t, ast.Subscript):
                    obj = self.eval(t.value, f)
                    key = self.const(t.slice, f)
                    if isinstance(obj, dict) and isinstance(key, str):
                        obj.pop(key, None)
        elif isinstance(st, ast.If):
            self.exec_body(st.body, f)
            self.exec_body(st.orelse, f)
        elif isinstance(st, ast.For):
            it = self.eval(st.iter, f)
            if isinstance(it, (list, tuple)):
                for item in it:
                    self.assign(st.target, item, None, f)
                    self.exec_body(st.body, f)
            else:
                self.exec_body(st.body, f)
        elif isinstance(st, (ast.With, ast.AsyncWith)):
            self.exec_body(st.body, f)
        elif isinstance(st, ast.Try):
            self.exec_body(st.body, f)
            self.exec_body(st.orelse, f)
            self.exec_body(st.finalbody, f)
        elif isinstance(st, ast.Return):
            if st.value is not None and f.returned is UNKNOWN:
                f.returned = self.eval(st.value, f)
        elif isinstance(st, ast.ImportFrom):
            src = self.w._absolute(f.modname, st.module, st.level)
            for alias in st.names:
                if self.w.module_file(f"{src}.{alias.name}"):
                    f.env[alias.asname or alias.name] = ModuleRef(f"{src}.{alias.name}")
                elif self.w.module_file(src):
                    f.env[alias.asname or alias.name] = self.w.resolve(src, alias.name)
                else:
                    f.env[alias.asname or alias.name] = External(f"{src}.{alias.name}")

    def assign(self, target: ast.expr, value: Any, value_node: ast.expr | None, f: Frame) -> None:
        if isinstance(target, ast.Name):
            f.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, (list, tuple)) and len(value) == len(target.elts):
                for t, v in zip(target.elts, value):
                    self.assign(t, v, None, f)
            else:
                for t in target.elts:
                    self.assign(t, UNKNOWN, None, f)
        elif isinstance(target, ast.Subscript):
            obj = self.eval(target.value, f)
            key = self.const(target.slice, f)
            if isinstance(obj, dict) and isinstance(key, str):
                obj[key] = self.kw_value(key, value_node, f) if value_node is not None else value

    # ---- expressions ---------------------------------------------------------------------

    def lookup(self, name: str, f: Frame) -> Any:
        if name in f.env:
            return f.env[name]
        return self.w.resolve(f.modname, name)

    def eval(self, e: ast.expr, f: Frame) -> Any:
        if isinstance(e, ast.Constant):
            return e.value
        if isinstance(e, ast.Name):
            return self.lookup(e.id, f)
        if isinstance(e, (ast.List, ast.Tuple)):
            return [self.eval(x, f) for x in e.elts]
        if isinstance(e, ast.Dict):
            out: dict[str, Any] = {}
            for k, v in zip(e.keys, e.values):
                if k is None:
                    inner = self.eval(v, f)
                    if isinstance(inner, dict):
                        out.update(inner)
                else:
                    key = self.const(k, f)
                    if isinstance(key, str):
                        out[key] = self.kw_value(key, v, f)
            return out
        if isinstance(e, ast.Subscript):
            obj = self.eval(e.value, f)
            key = self.const(e.slice, f)
            if isinstance(obj, dict) and isinstance(key, str):
                if key not in obj:
                    if isinstance(obj, KwargsMap):
                        raise ExtractionError(f"{obj.cls.name} has no field {key!r} (used in "
                                              f"{self.w.module_file(f.modname)})")
                    return UNKNOWN
                return obj[key]
            return UNKNOWN
        if isinstance(e, ast.Attribute):
            base = self.eval(e.value, f)
            return self.attr(base, e.attr, f)
        if isinstance(e, ast.JoinedStr):
            return self.const(e, f)
        if isinstance(e, ast.Call):
            return self.call(e, f)
        return UNKNOWN

    def value(self, e: ast.expr, f: Frame) -> Any:
        """eval, with module-level constants folded."""
        v = self.eval(e, f)
        if isinstance(v, AliasRef):
            c = self.const(v.value, Frame(v.modname, {}, None, None))
            return c if c is not UNKNOWN else v
        return v

    def attr(self, base: Any, name: str, f: Frame) -> Any:
        if isinstance(base, ModuleRef):
            return self.w.resolve(base.modname, name)
        if isinstance(base, ClassRef):
            member = self.w.class_member(base, name)
            if member is not None and isinstance(member[1], FuncRef):
                return BoundMethod(member[1], base)
            return member[1] if member else UNKNOWN
        if isinstance(base, Instance):
            member = self.w.class_member(base.cls, name)
            if member is not None and isinstance(member[1], FuncRef):
                return BoundMethod(member[1], base.cls, self_obj=base)
            return UNKNOWN
        if isinstance(base, SuperObj):
            member = self.w.class_member(base.cls_ctx, name, after=base.defining)
            if member is not None and isinstance(member[1], FuncRef):
                return BoundMethod(member[1], base.cls_ctx)
            return UNKNOWN
        if isinstance(base, External):
            return External(f"{base.name}.{name}")
        if isinstance(base, (dict, list, ParserObj, str)):
            return ("method", base, name)
        return UNKNOWN

    def call(self, e: ast.Call, f: Frame) -> Any:
        func = e.func
        # parser methods
        if isinstance(func, ast.Attribute) and func.attr == "add_argument":
            self.add_argument(e, f)
            return None
        if isinstance(func, ast.Attribute) and func.attr in (
                "add_argument_group", "add_mutually_exclusive_group", "add_parser", "add_subparsers"):
            return ParserObj()
        fname = ast.unparse(func)
        if fname == "get_kwargs" or fname.endswith(".get_kwargs"):
            target = self.eval(e.args[0], f) if e.args else UNKNOWN
            if not isinstance(target, ClassRef):
                raise ExtractionError(f"get_kwargs({ast.unparse(e.args[0]) if e.args else ''}) in "
                                      f"{self.w.module_file(f.modname)}: class not resolved")
            return self.get_kwargs(target)
        if fname == "super" and not e.args and f.owner is not None:
            return SuperObj(f.owner, f.cls_ctx or f.owner)
        target = self.eval(func, f)
        args = [self.value(a, f) if not isinstance(a, ast.Starred) else UNKNOWN for a in e.args]
        kwargs = {k.arg: self.eval(k.value, f) for k in e.keywords if k.arg}
        if isinstance(target, tuple) and len(target) == 3 and target[0] == "method":
            _, obj, meth = target
            if isinstance(obj, dict):
                if meth == "pop":
                    key = args[0] if args else None
                    default = args[1] if len(args) > 1 else UNKNOWN
                    return obj.pop(key, default) if isinstance(key, str) else UNKNOWN
                if meth == "items":
                    return list(obj.items())
                if meth == "get":
                    return obj.get(args[0], args[1] if len(args) > 1 else None) if args else UNKNOWN
            if isinstance(obj, list) and meth in ("remove", "append") and len(args) == 1:
                if args[0] is UNKNOWN or isinstance(args[0], Ref):
                    self.notes.append(f"flags: choices changed by {ast.unparse(e)[:80]} in "
                                      f"{self.w.module_file(f.modname)}; not evaluated")
                elif meth == "append":
                    obj.append(args[0])
                elif args[0] in obj:
                    obj.remove(args[0])
                return None
            if isinstance(obj, str) and meth == "replace" and all(isinstance(a, str) for a in args):
                return obj.replace(*args)
            return UNKNOWN
        if isinstance(target, BoundMethod):
            if self._worth_following(target.func.node):
                return self.call_function(target.func, args, kwargs, cls_ctx=target.cls_ctx,
                                          self_obj=target.self_obj)
            return args[0] if args else UNKNOWN
        if isinstance(target, FuncRef):
            if self._worth_following(target.node):
                return self.call_function(target, args, kwargs)
            return UNKNOWN
        if any(isinstance(a, ParserObj) for a in args):
            method = fname.split(".")[-1]
            defs = sorted(n for n in self.w.names if n.startswith("vllm/platforms/") and n.endswith(".py")
                          and f"def {method}(" in self.w.zip.read(n).decode("utf-8", "replace"))
            where = f"; defined in {', '.join(defs)}" if defs else ""
            self.notes.append(f"flags: not followed (chosen at run time): {fname}(parser) in "
                              f"{self.w.module_file(f.modname)}{where}; a platform or plugin may add "
                              f"options there")
        return UNKNOWN

    @staticmethod
    def _worth_following(node: ast.FunctionDef) -> bool:
        text = ast.unparse(node)
        return any(s in text for s in ("add_argument", "get_kwargs", "add_cli_args", "make_arg_parser",
                                       "_kwargs["))

    def get_kwargs(self, cls: ClassRef) -> KwargsMap:
        fields = {}
        for name, ann, modname in self.w.dataclass_fields(cls):
            try:
                fk = self.kw.field(ann, modname, name)
            except ExtractionError as exc:  # reported only if that field becomes an option
                fk = {"_error": str(exc), "_field": name}
            fk["_class"] = cls
            fields[name] = fk
        path = self.w.module_file(cls.modname)
        if path:
            self.files.add(path)
        return KwargsMap(cls, fields)

    def kw_value(self, key: str, node: ast.expr, f: Frame) -> Any:
        """Value of an argparse keyword as far as this reading cares (action, choices)."""
        if key == "action":
            text = ast.unparse(node)
            if text.endswith("BooleanOptionalAction"):
                return BOOL_ACTION
            v = self.const(node, f)
            return v if isinstance(v, str) else text
        if key == "choices":
            v = self.const(node, f)
            return v if isinstance(v, list) else DYNAMIC
        return self.eval(node, f)

    def const(self, node: ast.expr, f: Frame) -> Any:
        """Constant-fold what can be folded; UNKNOWN otherwise."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            vals = [self.const(x, f) for x in node.elts]
            return UNKNOWN if any(v is UNKNOWN for v in vals) else vals
        if isinstance(node, ast.Name):
            v = f.env.get(node.id, None) if node.id in f.env else None
            if node.id in f.env:
                return v if isinstance(v, (str, int, float, list, tuple)) else UNKNOWN
            ref = self.w.resolve(f.modname, node.id)
            if isinstance(ref, AliasRef):
                return self.const(ref.value, Frame(ref.modname, {}, None, None))
            return UNKNOWN
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            a, b = self.const(node.left, f), self.const(node.right, f)
            if isinstance(a, list) and isinstance(b, list):
                return a + b
            if isinstance(a, str) and isinstance(b, str):
                return a + b
            return UNKNOWN
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    x = self.eval(v.value, f)
                    if not isinstance(x, (str, int)):
                        return UNKNOWN
                    parts.append(str(x))
            return "".join(parts)
        if isinstance(node, ast.Call):
            fname = ast.unparse(node.func)
            if fname in ("list", "sorted", "tuple") and len(node.args) == 1:
                v = self.const(node.args[0], f)
                return (sorted(v, key=str) if fname == "sorted" else list(v)) if isinstance(v, list) else UNKNOWN
            if fname.split(".")[-1] == "get_args" and len(node.args) == 1:
                vals = self.kw.types.literal_of(node.args[0], f.modname)
                return list(vals) if vals is not None else UNKNOWN
            v = self.eval(node, f)
            return v if isinstance(v, (str, list)) else UNKNOWN
        v = self.eval(node, f)
        return v if isinstance(v, (str, int, list)) else UNKNOWN

    # ---- add_argument --------------------------------------------------------------------

    def add_argument(self, e: ast.Call, f: Frame) -> None:
        names: list[str] = []
        for a in e.args:
            if isinstance(a, ast.Starred):
                v = self.eval(a.value, f)
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    names.extend(v)
                elif v is not UNKNOWN:
                    self.notes.append(f"flags: starred option names not resolved in {self.w.module_file(f.modname)}")
                continue
            v = self.const(a, f)
            if isinstance(v, str):
                names.append(v)
            else:
                self.notes.append(f"flags: option name {ast.unparse(a)} not resolved in "
                                  f"{self.w.module_file(f.modname)} line {a.lineno}")
        kw: dict[str, Any] = {}
        for k in e.keywords:
            if k.arg is None:
                v = self.eval(k.value, f)
                if isinstance(v, dict):
                    kw.update(v)
                else:
                    self.notes.append(f"flags: **{ast.unparse(k.value)} not resolved in "
                                      f"{self.w.module_file(f.modname)} line {k.value.lineno}")
            else:
                kw[k.arg] = self.kw_value(k.arg, k.value, f)
        longs = [n for n in names if n.startswith("--")]
        if not longs:
            return
        path = self.w.module_file(f.modname)
        if path:
            self.files.add(path)
        entry: dict[str, Any] = {}
        if kw.get("_error"):
            self.notes.append(f"flags: {', '.join(longs)}: type of {kw['_class'].name}.{kw['_field']} "
                              f"not read ({kw['_error']}); no choices/--no- form recorded")
        choices = kw.get("choices")
        if isinstance(choices, list):
            entry["choices"] = sorted(choices, key=str) if "None" not in choices else \
                sorted([c for c in choices if c != "None"], key=str) + ["None"]
            entry["checked"] = "argparse"
            if kw.get("choices_dynamic"):
                entry["choices_extended_at_runtime"] = True
        elif choices == DYNAMIC:
            entry["choices_dynamic"] = True
        origin = kw.get("_class"), kw.get("_field")
        if origin[0] is not None:
            entry["field"] = f"{origin[0].name}.{origin[1]}"
            if "choices" not in entry:
                extra = self.checked_after_parsing(origin[0], origin[1], kw.get("_atoms") or [])
                if extra:
                    entry.update(extra)
        for n in longs:
            self.flags[n] = dict(entry)
        if kw.get("action") == BOOL_ACTION:
            for n in longs:
                self.flags["--no-" + n[2:]] = {"negates": n}

    def checked_after_parsing(self, cls: ClassRef, field: str, atoms: list[Atom]) -> dict | None:
        """Values a field accepts that argparse does not check but the config does."""
        for a in atoms:
            if a.kind == "enum" and isinstance(a.ref, ClassRef):
                validator = self._before_validator(cls, field)
                if validator is None:
                    continue
                text = ast.unparse(validator)
                if f"{a.ref.name}[value.upper()]" not in text:
                    continue
                values = sorted(m.lower() for m in self.w.enum_members(a.ref))
                if "== 'auto'" in text and "auto" not in values:
                    values = ["auto"] + values
                return {"choices": values, "checked": "after parsing",
                        "choices_from": f"{self.w.module_file(a.ref.modname)} {a.ref.name} member names, "
                                        f"parsed by {cls.name}.{validator.name} "
                                        f"({self.w.module_file(cls.modname)})"}
        if cls.name == "ModelConfig" and field == "quantization":
            qmod = "vllm.model_executor.layers.quantization"
            ref = self.w.resolve(qmod, "QUANTIZATION_METHODS")
            if isinstance(ref, AliasRef) and "QUANTIZATION_METHODS" in ast.unparse(cls.node):
                vals = self.const(ref.value, Frame(qmod, {}, None, None))
                if isinstance(vals, list):
                    return {"choices": sorted(vals), "checked": "after parsing",
                            "choices_from": f"{self.w.module_file(qmod)} QUANTIZATION_METHODS, checked by "
                                            f"ModelConfig ({self.w.module_file(cls.modname)})"}
            self.notes.append("flags: --quantization: QUANTIZATION_METHODS not found or not checked by "
                              "ModelConfig; choices left out")
        return None

    def _before_validator(self, cls: ClassRef, field: str) -> ast.FunctionDef | None:
        for c in self.w.mro(cls):
            for node in c.node.body:
                if not isinstance(node, ast.FunctionDef):
                    continue
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("field_validator") \
                            and any(isinstance(a, ast.Constant) and a.value == field for a in d.args):
                        return node
        return None


# --------------------------------------------------------------------------------------------
# env vars, parsers, speculative methods
# --------------------------------------------------------------------------------------------


def env_vars(w: Wheel) -> tuple[list[str], str]:
    mod = "vllm.envs"
    tree = w.tree(mod)
    if tree is None:
        raise ExtractionError("vllm/envs.py not in the wheel")
    names: set[str] = set()
    found = False
    for node in tree.body:
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id == "environment_variables" and isinstance(value, ast.Dict):
            found = True
            for k in value.keys:
                if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                    raise ExtractionError("environment_variables has a key that is not a string literal")
                names.add(k.value)
        if isinstance(target, ast.Subscript) and ast.unparse(target.value) == "environment_variables":
            k = target.slice
            if isinstance(k, ast.Constant) and isinstance(k.value, str):
                names.add(k.value)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and ast.unparse(node.value.func) == "environment_variables.update":
            raise ExtractionError("environment_variables.update(...) at module level: not read")
    if not found:
        raise ExtractionError("no `environment_variables = {...}` dict literal in vllm/envs.py")
    return sorted(names), w.module_file(mod) or ""


def _register_names(call: ast.Call) -> list[str] | None:
    """Names passed to register_module / register_lazy_module (None when not literal)."""
    args = list(call.args)
    for k in call.keywords:
        if k.arg == "name":
            args = [k.value] + args
    if not args:
        return None
    first = args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return [first.value]
    if isinstance(first, (ast.List, ast.Tuple)) and all(isinstance(x, ast.Constant) for x in first.elts):
        return [x.value for x in first.elts]
    return None


def registry(w: Wheel, packages: Iterable[str], manager: str, notes: list[str], label: str
             ) -> tuple[list[str] | None, str | None]:
    """Parser names a *ParserManager gets when its package is imported."""
    pkg = next((p for p in packages if w.tree(p) is not None), None)
    if pkg is None:
        notes.append(f"{label}: none of {', '.join(packages)} in the wheel")
        return None, None
    tree = w.tree(pkg)
    names: set[str] = set()
    # 1. module-level dicts fed to register_lazy_module by a loop
    dicts = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Dict):
                dicts[target.id] = node.value
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and "register_lazy_module" in ast.unparse(node):
            it = ast.unparse(node.iter)
            m = re.fullmatch(r"(\w+)\.items\(\)", it) or re.fullmatch(r"(\w+)", it)
            if m and m.group(1) in dicts:
                used.add(m.group(1))
            else:
                notes.append(f"{label}: loop over {it} in {w.module_file(pkg)} not understood")
    for name in used:
        for k in dicts[name].keys:
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                raise ExtractionError(f"{label}: non-literal key in {name}")
            names.add(k.value)
    # 2. direct calls at module level (docstring examples are strings and not seen)
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            fn = ast.unparse(node.value.func)
            if fn.endswith((".register_lazy_module", ".register_module")):
                got = _register_names(node.value)
                if got is None:
                    notes.append(f"{label}: non-literal registration {ast.unparse(node.value)[:80]}")
                else:
                    names.update(got)
    # 3. decorators in modules the package imports eagerly
    eager = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            src = w._absolute(pkg, node.module, node.level)
            if src.startswith(pkg + "."):
                eager.add(src)
            for alias in node.names:
                if w.module_file(f"{src}.{alias.name}"):
                    eager.add(f"{src}.{alias.name}")
    lazy_only: dict[str, str] = {}
    prefix = pkg.replace(".", "/") + "/"
    for path in sorted(n for n in w.names if n.startswith(prefix) and n.endswith(".py")):
        modname = path[:-3].replace("/", ".")
        if modname.endswith(".__init__"):
            continue
        mtree = w.tree(modname)
        for node in ast.walk(mtree):
            if isinstance(node, ast.ClassDef):
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and ast.unparse(d.func) == f"{manager}.register_module":
                        got = _register_names(d)
                        if got is None:
                            got = [node.name]
                        if modname in eager:
                            names.update(got)
                        else:
                            for g in got:
                                lazy_only[g] = path
    extra = {k: v for k, v in lazy_only.items() if k not in names}
    if extra:
        notes.append(f"{label}: registered only by a decorator in a module nothing imports up front "
                     f"(not selectable by name on its own): "
                     + ", ".join(f"{k} ({v})" for k, v in sorted(extra.items())))
    if not names:
        notes.append(f"{label}: no registrations found in {w.module_file(pkg)}")
        return None, w.module_file(pkg)
    return sorted(names), w.module_file(pkg)


def speculative(w: Wheel, notes: list[str]) -> tuple[list[str] | None, list[str] | None, str | None]:
    mod = "vllm.config.speculative"
    tree = w.tree(mod)
    if tree is None:
        notes.append("speculative_methods: vllm/config/speculative.py not in the wheel")
        return None, None, None
    cls = w.resolve(mod, "SpeculativeConfig")
    if not isinstance(cls, ClassRef):
        notes.append("speculative_methods: no SpeculativeConfig class in vllm/config/speculative.py")
        return None, None, w.module_file(mod)
    fields = w.dataclass_fields(cls)
    keys = sorted(n for n, _, _ in w.dataclass_fields(cls, init_only=True))
    method = next((f for f in fields if f[0] == "method"), None)
    if method is None:
        notes.append("speculative_methods: SpeculativeConfig has no `method` field")
        return None, keys, w.module_file(mod)
    text = ast.unparse(method[1])
    if "SkipValidation" in text:
        notes.append("speculative_methods: SpeculativeConfig.method is SkipValidation: the Literal is not "
                     "enforced by pydantic")
    values = TypeReader(w).literal_of(method[1], method[2])
    if values is None:
        notes.append(f"speculative_methods: SpeculativeConfig.method is typed {text}, not a Literal")
        return None, keys, w.module_file(mod)
    if not w.is_dataclass(cls):
        notes.append("speculative_config_keys: SpeculativeConfig is not a (pydantic) dataclass here")
    utils = w.tree("vllm.config.utils")
    if utils is None or "extra='forbid'" not in ast.unparse(utils):
        notes.append("speculative_config_keys: could not confirm that @config forbids unknown keys")
    return sorted(set(values)), keys, w.module_file(mod)


# --------------------------------------------------------------------------------------------


def extract(wheel_path: Path) -> dict[str, Any]:
    w = Wheel(wheel_path)
    notes: list[str] = []
    sha = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "vllm_version": w.version(),
                           "wheel": wheel_path.name, "sha256": sha, "sources": {}}
    try:
        reader = ParserReader(w)
        reader.read()
        out["flags"] = {k: reader.flags[k] for k in sorted(reader.flags)}
        out["sources"]["flags"] = sorted(reader.files)
        out["sources"]["flag_kwargs_rules"] = f"vllm/engine/arg_utils.py {reader.kw.func_name}"
        notes.extend(dict.fromkeys(reader.notes))
    except ExtractionError as exc:
        out["flags"] = None
        notes.append(f"flags: {exc}")
    try:
        out["env_vars"], out["sources"]["env_vars"] = env_vars(w)
    except ExtractionError as exc:
        out["env_vars"] = None
        notes.append(f"env_vars: {exc}")
    for key, packages, manager in (
            ("tool_call_parsers", ("vllm.tool_parsers", "vllm.entrypoints.openai.tool_parsers"), "ToolParserManager"),
            ("reasoning_parsers", ("vllm.reasoning",), "ReasoningParserManager")):
        try:
            out[key], src = registry(w, packages, manager, notes, key)
            if src:
                out["sources"][key] = src
        except ExtractionError as exc:
            out[key] = None
            notes.append(f"{key}: {exc}")
    try:
        methods, keys, src = speculative(w, notes)
    except ExtractionError as exc:
        methods, keys, src = None, None, None
        notes.append(f"speculative_methods: {exc}")
    out["speculative_methods"] = methods
    out["speculative_config_keys"] = keys
    if src:
        out["sources"]["speculative_methods"] = f"{src} SpeculativeConfig.method"
        out["sources"]["speculative_config_keys"] = f"{src} SpeculativeConfig fields"
    out["notes"] = notes
    return out


def dumps(facts: dict[str, Any]) -> str:
    """JSON with one line per flag / list, so that diffs between versions stay readable."""
    lines = ["{"]
    items = list(facts.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, dict) and value:
            lines.append(f" {json.dumps(key)}: {{")
            sub = list(value.items())
            for j, (k, v) in enumerate(sub):
                lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}"
                             + ("," if j < len(sub) - 1 else ""))
            lines.append(f" }}{comma}")
        elif isinstance(value, list) and value and key == "notes":
            lines.append(f" {json.dumps(key)}: [")
            for j, v in enumerate(value):
                lines.append(f"  {json.dumps(v, ensure_ascii=False)}" + ("," if j < len(value) - 1 else ""))
            lines.append(f" ]{comma}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def find_or_download(version: str, wheel_dir: Path) -> Path:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    pattern = f"vllm-{version}-*.whl"
    found = sorted(wheel_dir.glob(pattern))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", f"vllm=={version}", "--no-deps",
                        "--only-binary=:all:", "-d", str(wheel_dir)], check=True)
        found = sorted(wheel_dir.glob(pattern))
    if not found:
        raise SystemExit(f"no wheel for vllm {version} in {wheel_dir}")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel_or_version")
    ap.add_argument("-o", "--output", help="write the JSON here (default: stdout)")
    ap.add_argument("--wheel-dir", default=DEFAULT_WHEEL_DIR,
                    help="where versions are looked for / downloaded (default: %(default)s)")
    args = ap.parse_args(argv)
    target = Path(args.wheel_or_version)
    if not (target.suffix == ".whl" and target.is_file()):
        target = find_or_download(args.wheel_or_version, Path(args.wheel_dir))
    facts = extract(target)
    text = dumps(facts)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
