#!/usr/bin/env python3
"""Writes Tests/Fixtures/parsers/coercion_cases.jsonl: how vLLM 0.33's GLM-4.7 parser types an <arg_value>.

Each line: {"name", "text", "schema", "arguments"} where "arguments" is the exact JSON text the parser must
return for a call `<tool_call>f<arg_key>v</arg_key><arg_value>TEXT</arg_value></tool_call>` to a tool whose
parameter "v" has that schema. The values come from CPython itself (int(), float(), json.loads, json.dumps), run
through the typing rule described in shared/reference/TEMPLATES_AND_PARSERS.md section 5.3 (vLLM's
extract_types_from_schema + coerce_to_schema_type, restated here). An object or array value is the model's JSON
as json.loads reads it and json.dumps writes it back: vLLM 0.33 does not type its members by the nested
properties/items (issue 10, item 5), so nested strings stay strings and numbers keep their value and sign.

Rerun: python3 tools/make_parser_coercion_fixtures.py   (from the repository root; needs only the stdlib)
"""
import json
import math
import os

ALIASES = {"str": "string", "text": "string", "varchar": "string", "char": "string", "enum": "string",
           "int": "integer", "int32": "integer", "int64": "integer", "uint": "integer", "uint32": "integer",
           "uint64": "integer", "long": "integer", "short": "integer", "unsigned": "integer", "float": "number",
           "float32": "number", "float64": "number", "double": "number", "bool": "boolean", "dict": "object",
           "arr": "array", "list": "array", "sequence": "array"}


def schema_types(schema):
    if not isinstance(schema, dict):
        return {"string"}
    found = set()
    t = schema.get("type")
    if isinstance(t, str):
        found.add(t)
    elif isinstance(t, list):
        found.update(x for x in t if isinstance(x, str))
    members = schema.get("enum")
    if isinstance(members, list):
        for m in members:
            kind = ("null" if m is None else "boolean" if isinstance(m, bool) else "integer" if isinstance(m, int)
                    else "number" if isinstance(m, float) else "string" if isinstance(m, str)
                    else "array" if isinstance(m, list) else "object")
            found.add(kind)
    for field in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(field), list):
            for branch in schema[field]:
                if isinstance(branch, dict):
                    found |= schema_types(branch)
    return found or {"string"}


def finite(value):
    try:
        json.dumps(value, allow_nan=False)
        return True
    except ValueError:
        return False


def loads_finite(text):
    try:
        value = json.loads(text)
    except ValueError:
        return None, False
    return (value, True) if finite(value) else (None, False)


def coerce(text, types):
    types = {ALIASES.get(t.strip().lower(), t.strip().lower()) for t in types}
    if "null" in types and text.lower() == "null":
        return None
    if "integer" in types:
        try:
            return int(text)
        except ValueError:
            pass
    if "number" in types:
        try:
            x = float(text)
            if math.isfinite(x):
                return int(x) if x == int(x) else x
        except ValueError:
            pass
    if "boolean" in types:
        low = text.lower().strip()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    if "object" in types or "array" in types:
        value, ok = loads_finite(text)
        if ok:
            return value
    if "string" in types:
        return text
    value, ok = loads_finite(text)
    return value if ok else text


def typed(text, schema):
    return coerce(text, schema_types(schema))


CASES = [
    ("string_keeps_digits", "007", {"type": "string"}),
    ("string_keeps_spaces", "  a b ", {"type": "string"}),
    ("integer_plain", "42", {"type": "integer"}),
    ("integer_spaces_sign_zeros", " +007\n", {"type": "integer"}),
    ("integer_underscores", "1_000_000", {"type": "integer"}),
    ("integer_bad_underscore_falls_back", "1__0", {"type": "integer"}),
    ("integer_arabic_indic_digits", "\u0664\u0662", {"type": "integer"}),
    ("integer_huge", "123456789012345678901234567890", {"type": "integer"}),
    ("integer_negative_zero", "-0", {"type": "integer"}),
    ("integer_from_float_text_falls_back_to_json", "3.5", {"type": "integer"}),
    ("integer_word_stays_string", "forty-two", {"type": "integer"}),
    ("number_fraction", "3.25", {"type": "number"}),
    ("number_integral_becomes_int", "3.0", {"type": "number"}),
    ("number_exponent", "1e3", {"type": "number"}),
    ("number_big_exponent_exact_int", "1e25", {"type": "number"}),
    ("number_huge_exact_int", "1.5e300", {"type": "number"}),
    ("number_leading_dot", ".5", {"type": "number"}),
    ("number_trailing_dot", "5.", {"type": "number"}),
    ("number_underscores", "1_0.2_5", {"type": "number"}),
    ("number_negative_zero", "-0.0", {"type": "number"}),
    ("number_small", "1e-7", {"type": "number"}),
    ("number_inf_stays_string", "inf", {"type": "number"}),
    ("number_nan_stays_string", "NaN", {"type": "number"}),
    ("number_hex_stays_string", "0x10", {"type": "number"}),
    ("number_overflow_stays_string", "1e400", {"type": "number"}),
    ("boolean_true", "true", {"type": "boolean"}),
    ("boolean_capital_and_spaces", " True ", {"type": "boolean"}),
    ("boolean_one", "1", {"type": "boolean"}),
    ("boolean_zero", "0", {"type": "boolean"}),
    ("boolean_yes_stays_string", "yes", {"type": "boolean"}),
    ("null_any_case", "NULL", {"type": "null"}),
    ("null_with_space_via_json_fallback", " null", {"type": "null"}),
    ("object_json", "{\"k\": [1, 2]}", {"type": "object"}),
    ("object_python_literal_stays_string", "{'a': 1}", {"type": "object"}),
    ("object_accepts_any_json", "42", {"type": "object"}),
    ("object_with_nan_stays_string", "{\"x\": NaN}", {"type": "object"}),
    ("array_json", " [1, \"x\", 2.0] ", {"type": "array"}),
    ("type_list_integer_first", "7", {"type": ["string", "integer"]}),
    ("type_list_null_first", "null", {"type": ["string", "null"]}),
    ("type_alias_int", "12", {"type": "int"}),
    ("type_alias_case_and_spaces", "2.5", {"type": " Float "}),
    ("type_alias_bool", "false", {"type": "bool"}),
    ("enum_of_integers", "3", {"enum": [1, 2, 3]}),
    ("enum_of_strings", "3", {"enum": ["1", "3"]}),
    ("enum_mixed_null", "null", {"enum": ["a", None]}),
    ("any_of", "12", {"anyOf": [{"type": "string"}, {"type": "integer"}]}),
    ("one_of_number", "1.5", {"oneOf": [{"type": "number"}, {"type": "null"}]}),
    ("all_of_nested_any_of", "true", {"allOf": [{"anyOf": [{"type": "boolean"}]}]}),
    ("no_type_means_string", "42", {"description": "no type"}),
    ("unknown_type_falls_back_to_json", "[1, 2]", {"type": "mystery"}),
    ("unknown_type_text_stays_string", "hello", {"type": "mystery"}),
    ("nested_properties", "{\"n\": \"5\", \"s\": 5, \"keep\": \"x\", \"flag\": \"true\"}",
     {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"},
                                       "flag": {"type": "boolean"}}}),
    ("nested_items", "[\"1\", \"2.5\", 3]", {"type": "array", "items": {"type": "number"}}),
    ("nested_deep", "{\"a\": {\"b\": [\"1\", \"0\"]}}",
     {"type": "object", "properties": {"a": {"type": "object", "properties": {
         "b": {"type": "array", "items": {"type": "boolean"}}}}}}),
    ("nested_string_stays_string_in_object", "{\"n\": \"3\"}",
     {"type": "object", "properties": {"n": {"type": "integer"}}}),
    ("nested_items_not_retyped", "[\"3\", 3.0, true]", {"type": "array", "items": {"type": "integer"}}),
    ("object_number_spellings",
     "{\"a\": 3e-3, \"b\": -0.0, \"c\": 1e16, \"d\": 0.00001, \"e\": 3.0, \"f\": 123456789012345678901234567890, "
     "\"g\": 1E5, \"h\": -0, \"i\": 1e15, \"j\": 0.0001, \"k\": -2.50}",
     {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}),
    ("array_number_spellings", "[3e-3, -0.0, 1.5E+2, 0.1000000000000000055511151231257827, 1e22, 2.5e-7, -1e-320]",
     {"type": "array", "items": {"type": "string"}}),
    ("non_ascii_string", "東京 \u00e9\U0001F600", {"type": "string"}),
    ("control_characters_escaped", "a\tb\u0001c\"d\\e", {"type": "string"}),
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "Tests", "Fixtures", "parsers", "coercion_cases.jsonl")
    with open(path, "w", encoding="utf-8") as out:
        for name, text, schema in CASES:
            arguments = json.dumps({"v": typed(text, schema)}, ensure_ascii=False)
            out.write(json.dumps({"name": name, "text": text, "schema": schema, "arguments": arguments},
                                 ensure_ascii=False) + "\n")
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
