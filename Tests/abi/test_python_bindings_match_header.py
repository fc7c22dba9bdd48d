"""The Python binding's ctypes declarations agree with include/glm.h, so the two cannot drift apart silently:
every function of the header is declared in the binding with argument and return types of the same kind and size,
and every struct the binding passes (by pointer, by value, through the event callback) has the C layout: the same
field names in order, offsets and total size as the C compiler computes them from the header.

The header is read here with a small parser of its own (prototypes, typedefs, struct bodies); the C layout comes
from compiling a program that prints sizeof/offsetof, independent of the binding."""
import ctypes
import re
import sys

import pytest

from abi_support import HEADER, ROOT, header_functions, run

sys.path.insert(0, str(ROOT / "bindings" / "python"))
import glm  # noqa: E402  (after the path is set)
from glm import _native  # noqa: E402

LIB = _native.lib


def header_text():
    return re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)


def prototypes():
    """{name: (return type, [parameter types])} for every function declared in the header."""
    found = {}
    for match in re.finditer(r"^([A-Za-z_][\w \*]*?)\s*\b(glm_\w+)\s*\(([^;{]*?)\)\s*;", header_text(), flags=re.M):
        ret, name, params = match.group(1).strip(), match.group(2), match.group(3).strip()
        if ret.startswith("typedef"):
            continue
        types = []
        if params not in ("", "void"):
            for param in params.split(","):
                param = " ".join(param.split())
                # Drop the parameter name (the last identifier), keep the type with its stars.
                named = re.match(r"^(.*?[\s\*])(\w+)$", param)
                if named and named.group(1).strip():
                    param = named.group(1)
                types.append(param.replace(" *", "*").replace("* ", "*").strip())
        found[name] = (" ".join(ret.split()).replace(" *", "*"), types)
    return found


def enums():
    return set(re.findall(r"typedef enum \w+ \{[^}]*\}\s*(\w+);", header_text(), flags=re.S))


def structs():
    """{typedef name: [(field type, field name)]} for the structs with a body."""
    out = {}
    for body, name in re.findall(r"typedef struct \w+ \{([^}]*)\}\s*(\w+);", header_text(), flags=re.S):
        fields = []
        for declaration in body.split(";"):
            declaration = " ".join(declaration.split())
            if declaration:
                ctype, field = re.match(r"(.*?)\s*\b(\w+)$", declaration).groups()
                fields.append((ctype.replace(" *", "*").strip(), field))
        out[name] = fields
    return out


SCALARS = {
    "int32_t": ("int", 4, True), "uint32_t": ("int", 4, False), "int64_t": ("int", 8, True),
    "uint64_t": ("int", 8, False),
    "size_t": ("int", 8, False), "bool": ("bool", 1, None), "float": ("float", 4, None),
    "double": ("float", 8, None), "int": ("int", 4, True), "char": ("int", 1, True),
}
CTYPES_SCALARS = {
    ctypes.c_int32: ("int", 4, True), ctypes.c_uint32: ("int", 4, False), ctypes.c_int64: ("int", 8, True),
    ctypes.c_uint64: ("int", 8, False), ctypes.c_bool: ("bool", 1, None), ctypes.c_float: ("float", 4, None),
    ctypes.c_double: ("float", 8, None), ctypes.c_int8: ("int", 1, True), ctypes.c_char: ("int", 1, True),
}

# The header's callback typedefs: (return type, parameter types).
CALLBACKS = {
    "glm_event_callback": ("bool", ["const glm_event*", "void*"]),
    "glm_quantize_progress": ("bool", ["uint64_t", "uint64_t", "const char*", "void*"]),
}


def check_type(ctype, py, where, problems, struct_classes):
    """Appends to `problems` if ctypes type `py` cannot carry C type `ctype`."""
    base = ctype.replace("const ", "").strip()
    stars = base.count("*")
    base = base.replace("*", "").strip()
    if stars == 0:
        if base == "void":
            if py is not None:
                problems.append(f"{where}: C void, ctypes {py}")
        elif base in enums():
            if CTYPES_SCALARS.get(py) != ("int", 4, True):
                problems.append(f"{where}: C enum {base} (int), ctypes {py}")
        elif base in SCALARS:
            if CTYPES_SCALARS.get(py) != SCALARS[base]:
                problems.append(f"{where}: C {base}, ctypes {py}")
        elif base in structs():
            struct_classes.setdefault(base, set()).add(py)
        elif base in CALLBACKS:
            result, arguments = CALLBACKS[base]
            if not (isinstance(py, type) and issubclass(py, ctypes._CFuncPtr)):
                problems.append(f"{where}: C callback, ctypes {py}")
            else:
                check_type(result, py._restype_, f"{where} callback return", problems, struct_classes)
                if len(py._argtypes_) != len(arguments):
                    problems.append(f"{where}: callback takes {len(arguments)} arguments, ctypes {len(py._argtypes_)}")
                else:
                    for i, (c_argument, py_argument) in enumerate(zip(arguments, py._argtypes_)):
                        check_type(c_argument, py_argument, f"{where} callback argument {i + 1}", problems,
                                   struct_classes)
        else:
            problems.append(f"{where}: unknown C type {ctype}")
        return
    # A pointer. void*, opaque handles and char* may be c_void_p / c_char_p; a pointer to a known type must be
    # POINTER(that type) or an untyped pointer (c_void_p) where the binding passes raw buffers.
    if py in (ctypes.c_void_p, ctypes.c_char_p):
        if py is ctypes.c_char_p and not (stars == 1 and base == "char"):
            problems.append(f"{where}: C {ctype}, ctypes c_char_p (only char* is a C string)")
        return
    if not (isinstance(py, type) and issubclass(py, ctypes._Pointer)):
        problems.append(f"{where}: C pointer {ctype}, ctypes {py}")
        return
    inner = base + "*" * (stars - 1)
    target = py._type_
    if stars == 1 and (base not in SCALARS and base not in structs() and base not in enums()):
        if target is not ctypes.c_void_p and base != "void":
            problems.append(f"{where}: C {ctype} (opaque), ctypes POINTER({target})")
        return
    check_type(inner, target, where + " (pointee)", problems, struct_classes)


def test_every_header_function_is_declared_with_matching_types():
    declared = prototypes()
    assert set(declared) == set(header_functions()) and len(declared) >= 40
    problems, struct_classes = [], {}
    for name, (ret, params) in sorted(declared.items()):
        function = getattr(LIB, name)
        if function.argtypes is None:
            problems.append(f"{name}: no argtypes in the binding")
            continue
        if len(function.argtypes) != len(params):
            problems.append(f"{name}: header has {len(params)} parameters, binding {len(function.argtypes)}")
            continue
        check_type(ret, function.restype, f"{name} return", problems, struct_classes)
        for i, (ctype, py) in enumerate(zip(params, function.argtypes)):
            check_type(ctype, py, f"{name} parameter {i + 1}", problems, struct_classes)
    assert problems == []
    # Every struct with a body reaches the binding somewhere (params, default-params returns, the event).
    assert set(struct_classes) == set(structs())


@pytest.fixture(scope="module")
def c_layouts(tmp_path_factory):
    """{struct: (sizeof, [(field, offsetof, sizeof field)])} computed by the C compiler from the header."""
    lines = ["#include <glm.h>", "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
    for name, fields in structs().items():
        lines.append(f'    printf("S {name} %zu\\n", sizeof({name}));')
        for _, field in fields:
            lines.append(f'    printf("F {name} {field} %zu %zu\\n", offsetof({name}, {field}), '
                         f"sizeof((({name} *)0)->{field}));")
    lines.append("    return 0;\n}")
    directory = tmp_path_factory.mktemp("layout")
    source, exe = directory / "layout.c", directory / "layout"
    source.write_text("\n".join(lines) + "\n")
    build = run(["cc", "-std=c11", "-Wall", "-Werror", "-Iinclude", str(source), "-o", str(exe)])
    assert build.returncode == 0, build.stderr
    layouts = {}
    for line in run([str(exe)]).stdout.splitlines():
        parts = line.split()
        if parts[0] == "S":
            layouts[parts[1]] = (int(parts[2]), [])
        else:
            layouts[parts[1]][1].append((parts[2], int(parts[3]), int(parts[4])))
    return layouts


def test_structs_have_the_c_layout(c_layouts):
    problems, struct_classes = [], {}
    for name, (ret, params) in prototypes().items():
        function = getattr(LIB, name)
        check_type(ret, function.restype, name, problems, struct_classes)
        for ctype, py in zip(params, function.argtypes or []):
            check_type(ctype, py, name, problems, struct_classes)
    assert set(struct_classes) == set(c_layouts) and len(c_layouts) >= 4
    for name, classes in struct_classes.items():
        size, fields = c_layouts[name]
        for cls in classes:
            assert isinstance(cls, type) and issubclass(cls, ctypes.Structure), f"{name}: {cls}"
            assert ctypes.sizeof(cls) == size, f"{name}: sizeof C {size}, ctypes {ctypes.sizeof(cls)}"
            assert [f[0] for f in cls._fields_] == [f[0] for f in fields], f"{name}: field names or order"
            for field, offset, field_size in fields:
                descriptor = getattr(cls, field)
                assert (descriptor.offset, descriptor.size) == (offset, field_size), f"{name}.{field}"
            for (ctype, field), (_, py) in zip(structs()[name], cls._fields_):
                field_problems = []
                check_type(ctype, py, f"{name}.{field}", field_problems, {})
                assert field_problems == []


def test_the_checker_notices_drift():
    """The comparison is not vacuous: wrong kinds, sizes and pointer levels are reported."""
    for ctype, wrong in [("int32_t", ctypes.c_int64), ("size_t", ctypes.c_int32), ("float*", ctypes.c_char_p),
                         ("const int32_t*", ctypes.POINTER(ctypes.c_int64)), ("char**", ctypes.c_char_p),
                         ("bool", ctypes.c_int32), ("glm_status", ctypes.c_float), ("void", ctypes.c_int)]:
        problems = []
        check_type(ctype, wrong, "probe", problems, {})
        assert problems, f"{ctype} vs {wrong} was not reported"
    ok = []
    check_type("const int32_t*", ctypes.POINTER(ctypes.c_int32), "probe", ok, {})
    check_type("glm_model**", ctypes.POINTER(ctypes.c_void_p), "probe", ok, {})
    assert ok == []
