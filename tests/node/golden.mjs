// Golden encodings from the real `capnweb` serializer.
//
//   node golden.mjs
//       Prints ONE line: a JSON object mapping case name -> capnweb `serialize(value)` string.
//
//   node golden.mjs --deserialize < input.json
//       Reads one JSON object {name: string, ...} from stdin. For each entry, runs capnweb
//       `deserialize(string)` and re-`serialize`s the result. Prints ONE line:
//       {name: {"ok": bool, "reserialized": string|null, "error": string|null}, ...}
//       ok is true only when deserialize succeeded AND the re-serialized string equals the input.

import { deserialize, serialize } from "capnweb";

function errorProps() {
  const e = new Error("with props");
  e.code = 42;
  e.detail = "x";
  return e;
}

const CASES = [
  ["null", () => null],
  ["true", () => true],
  ["false", () => false],
  ["int", () => 42],
  ["neg_int", () => -7],
  ["float", () => 3.5],
  ["zero", () => 0],
  ["max_safe", () => 9007199254740991],
  ["min_safe", () => -9007199254740991],
  ["string", () => "hello"],
  ["string_unicode", () => "héllo 🌍 \u0000 \u001f \"q\" \\ \n \t"],
  ["empty_string", () => ""],
  ["array", () => [1, "two", null]],
  ["nested_array", () => [[1, [2, [3]]]]],
  ["empty_array", () => []],
  ["object", () => ({ a: 1, b: "x", c: [true] })],
  ["nested_object", () => ({ outer: { inner: { deep: [1, { x: null }] } } })],
  ["empty_object", () => ({})],
  ["undefined", () => undefined],
  ["array_with_undefined", () => [1, undefined]],
  ["object_with_undefined", () => ({ a: undefined, b: 2 })],
  ["inf", () => Infinity],
  ["neg_inf", () => -Infinity],
  ["nan", () => NaN],
  ["bigint", () => 12345678901234567890n],
  ["neg_bigint", () => -5n],
  ["bigint_zero", () => 0n],
  ["bigint_2_64", () => 2n ** 64n],
  ["date", () => new Date(1749342170815)],
  ["date_zero", () => new Date(0)],
  ["date_nan", () => new Date(NaN)],
  ["bytes", () => new Uint8Array([1, 2, 3, 255])],
  ["bytes_empty", () => new Uint8Array(0)],
  ["bytes_1", () => new Uint8Array([7])],
  ["bytes_2", () => new Uint8Array([7, 8])],
  ["bytes_u16", () => new Uint16Array([1, 2, 65535])],
  ["bytes_arraybuffer", () => new Uint8Array([9, 10]).buffer],
  ["bytes_i8", () => new Int8Array([-1, 1])],
  ["bytes_f64", () => new Float64Array([1.5])],
  ["error", () => new Error("plain")],
  ["range_error", () => new RangeError("bad range")],
  ["type_error", () => new TypeError("bad type")],
  ["error_props", errorProps],
  ["error_cause", () => new Error("outer", { cause: "inner" })],
  ["url", () => new URL("https://example.com/path?q=1")],
  ["headers", () => new Headers([["content-type", "text/plain"], ["x-custom", "hello"]])],
  ["mixed", () => ({
    list: [1, undefined, new Date(0)],
    big: 2n ** 64n,
    bytes: new Uint8Array([1]),
    nested: [[["deep"]]],
  })],
];

function errText(e) {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const args = process.argv.slice(2);
if (args.length === 0) {
  const out = {};
  for (const [name, make] of CASES) out[name] = serialize(make());
  process.stdout.write(JSON.stringify(out) + "\n");
} else if (args.length === 1 && args[0] === "--deserialize") {
  let input;
  try {
    input = JSON.parse(await readStdin());
  } catch (e) {
    process.stderr.write(`golden.mjs --deserialize: stdin is not JSON: ${errText(e)}\n`);
    process.exit(2);
  }
  if (input === null || typeof input !== "object" || Array.isArray(input)) {
    process.stderr.write("golden.mjs --deserialize: stdin must be a JSON object {name: string}\n");
    process.exit(2);
  }
  const out = {};
  for (const [name, text] of Object.entries(input)) {
    if (typeof text !== "string") {
      out[name] = { ok: false, reserialized: null, error: `input for ${name} is not a string` };
      continue;
    }
    let value;
    try {
      value = deserialize(text);
    } catch (e) {
      out[name] = { ok: false, reserialized: null, error: `deserialize failed: ${errText(e)}` };
      continue;
    }
    let re;
    try {
      re = serialize(value);
    } catch (e) {
      out[name] = { ok: false, reserialized: null, error: `re-serialize failed: ${errText(e)}` };
      continue;
    }
    out[name] = re === text
      ? { ok: true, reserialized: re, error: null }
      : { ok: false, reserialized: re, error: "re-serialized string differs from input" };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
} else {
  process.stderr.write("usage: node golden.mjs [--deserialize]\n");
  process.exit(2);
}
