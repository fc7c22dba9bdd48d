"""Random JSON instances of a JSON schema, for benchmarks and tests: a small generator that knows the keywords
libglm's constrained decoder supports, checked afterwards with `jsonschema` (instances that fail are dropped).

It is independent of libglm: it reads the schema itself and draws values with Python's `random`.
"""
import datetime
import json
import random
import string
import uuid

WORDS = ("alpha beta gamma delta river stone cloud light north quiet amber cedar maple ocean pixel "
         "signal vector orbit harbor meadow lantern copper velvet summit").split()


class Unsupported(Exception):
    pass


def resolve(root, ref):
    if not ref.startswith("#"):
        raise Unsupported("remote $ref")
    node = root
    for part in ref[1:].split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def words(rng, lo=1, hi=4):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def sample_pattern(rng, pattern, max_length):
    """A string matching `pattern` (sampled from Python's own parse of it), or raises Unsupported."""
    import re
    try:
        import re._parser as sre_parse
        import re._constants as C
    except ImportError:  # Python < 3.11
        import sre_parse
        import sre_constants as C
    printable = [chr(c) for c in range(0x20, 0x7F)]
    categories = {C.CATEGORY_DIGIT: string.digits, C.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
                  C.CATEGORY_SPACE: " ", C.CATEGORY_NOT_DIGIT: string.ascii_letters,
                  C.CATEGORY_NOT_WORD: " -.,", C.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits}

    def char_in(items):
        negate = any(op == C.NEGATE for op, _ in items)
        pool = set()
        for op, av in items:
            if op == C.LITERAL:
                pool.add(chr(av))
            elif op == C.RANGE:
                pool.update(chr(c) for c in range(av[0], min(av[1], av[0] + 200) + 1))
            elif op == C.CATEGORY:
                pool.update(categories.get(av, ""))
        if negate:
            pool = set(printable) - pool
        if not pool:
            raise Unsupported("empty class")
        return rng.choice(sorted(pool))

    def emit(items):
        out = []
        for op, av in items:
            if op == C.LITERAL:
                out.append(chr(av))
            elif op == C.ANY:
                out.append(rng.choice(string.ascii_letters))
            elif op == C.IN:
                out.append(char_in(av))
            elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
                lo, hi, sub = av
                hi = min(hi, lo + 3)
                for _ in range(rng.randint(lo, hi)):
                    out.append(emit(sub))
            elif op == C.SUBPATTERN:
                out.append(emit(av[-1]))
            elif op == C.BRANCH:
                out.append(emit(rng.choice(av[1])))
            elif op == C.AT:
                pass
            else:
                raise Unsupported(str(op))
        return "".join(out)

    parsed = sre_parse.parse(pattern)
    for _ in range(50):
        text = emit(parsed)
        if len(text) <= max_length and re.search(pattern, text):
            return text
    raise Unsupported("pattern sample")


def string_value(rng, schema):
    fmt = schema.get("format")
    if "pattern" in schema:
        return sample_pattern(rng, schema["pattern"], schema.get("maxLength", 10**6))
    if fmt == "date-time":
        d = datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10**8))
        return d.strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "date":
        return (datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randint(0, 9000))).isoformat()
    if fmt == "time":
        return "%02d:%02d:%02dZ" % (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if fmt == "email":
        return "%s@%s.com" % (rng.choice(WORDS), rng.choice(WORDS))
    if fmt == "ipv4":
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    if fmt == "ipv6":
        return ":".join("%x" % rng.randint(0, 65535) for _ in range(8))
    if fmt in ("uri", "uri-reference"):
        return "https://%s.example.org/%s" % (rng.choice(WORDS), rng.choice(WORDS))
    if fmt == "hostname":
        return "%s.example.org" % rng.choice(WORDS)
    lo = schema.get("minLength", 0)
    hi = schema.get("maxLength", max(lo, 40))
    text = words(rng)
    if len(text) > hi:
        text = text[:hi]
    while len(text) < lo:
        text += rng.choice(string.ascii_lowercase)
    return text


def number_value(rng, schema, integer):
    lo = schema.get("minimum", schema.get("exclusiveMinimum", -1000))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", 1000))
    if isinstance(schema.get("exclusiveMinimum"), bool) or isinstance(schema.get("exclusiveMaximum"), bool):
        raise Unsupported("draft-4 exclusive bounds")
    if hi - lo > 2000:
        lo, hi = max(lo, -1000), min(hi, lo + 2000) if lo > -1000 else min(hi, 1000)
    if integer:
        return rng.randint(int(lo) + (1 if "exclusiveMinimum" in schema else 0),
                           int(hi) - (1 if "exclusiveMaximum" in schema else 0))
    return round(rng.uniform(lo, hi), 3)


def value(rng, schema, root, depth=0):
    if depth > 12:
        raise Unsupported("too deep")
    if schema is True or schema == {}:
        return rng.choice([words(rng), rng.randint(0, 99), True, None])
    if schema is False:
        raise Unsupported("false schema")
    if "$ref" in schema:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        target = resolve(root, schema["$ref"])
        return value(rng, {**target, **rest} if isinstance(target, dict) else target, root, depth + 1)
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = resolve(root, part["$ref"]) if "$ref" in part else part
            for k, v in part.items():
                if k == "properties":
                    merged.setdefault("properties", {}).update(v)
                elif k == "required":
                    merged["required"] = list(merged.get("required", [])) + list(v)
                else:
                    merged[k] = v
        return value(rng, merged, root, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            branch = rng.choice(schema[key])
            return value(rng, {**rest, **branch}, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    types = schema.get("type")
    if types is None:
        types = "object" if "properties" in schema else "string"
    if isinstance(types, list):
        types = rng.choice(types)
    if types == "null":
        return None
    if types == "boolean":
        return rng.random() < 0.5
    if types == "integer":
        return number_value(rng, schema, True)
    if types == "number":
        return number_value(rng, schema, False)
    if types == "string":
        return string_value(rng, schema)
    if types == "array":
        prefix = schema.get("prefixItems", [])
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", max(lo, 3))
        if schema.get("items") is False:
            hi = min(hi, len(prefix))
        n = rng.randint(max(lo, min(len(prefix), hi)), max(lo, min(hi, lo + 3)))
        out = []
        for i in range(n):
            sub = prefix[i] if i < len(prefix) else schema.get("items", {})
            out.append(value(rng, sub, root, depth + 1))
        return out
    if types == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = {}
        for name, sub in props.items():
            if name in required or rng.random() < 0.7:
                out[name] = value(rng, sub, root, depth + 1)
        for name in required - set(out):
            out[name] = value(rng, schema.get("additionalProperties", {}) or {}, root, depth + 1)
        return out
    raise Unsupported("type %r" % (types,))


def instance(schema, seed, tries=20):
    """A random instance valid under `schema` (jsonschema with format checks), or None."""
    import jsonschema
    rng = random.Random(seed)
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    for _ in range(tries):
        try:
            v = value(rng, schema, schema)
        except (Unsupported, KeyError, ValueError, IndexError, TypeError, RecursionError):
            return None
        if validator.is_valid(v):
            return v
    return None


if __name__ == "__main__":
    import sys
    for line in open(sys.argv[1]):
        case = json.loads(line)
        print(case["name"], json.dumps(instance(case["schema"], 0))[:200])
