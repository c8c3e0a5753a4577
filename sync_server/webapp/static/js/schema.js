// The collections' fields, types and constraints, read from /app/schema.json: the JSON
// Schema export of the same msgspec types the server validates pushes with, plus each
// ranked field's order. Forms are built from it and every value is checked against it
// before an edit is queued, so the app never builds a change the server rejects for
// its type, enum, bounds or a missing required field.

const AUTHORSHIP = new Set(["id", "ward_id", "created_by", "created_at"]);
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export class Schema {
  static async load(url = "/app/schema.json") {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`schema: HTTP ${response.status}`);
    return new Schema(await response.json());
  }

  constructor(doc) { this.doc = doc; }

  collections() { return Object.keys(this.doc["x-collections"]); }
  policies(collection) { return this.doc["x-merge-policies"][collection] || {}; }
  ranks(collection) { return (this.doc["x-ranks"] || {})[collection] || {}; }

  struct(collection) {
    const ref = this.doc["x-collections"][collection].$ref.split("/").at(-1);
    return this.doc.$defs[ref];
  }

  /** The fields an officer fills in, in schema order: {name, required, policy, type, enum, ...}. */
  fields(collection) {
    const struct = this.struct(collection);
    const required = new Set(struct.required);
    const policies = this.policies(collection);
    return Object.entries(struct.properties).filter(([name]) => !AUTHORSHIP.has(name)).map(([name, prop]) => {
      const inner = prop.anyOf ? prop.anyOf.find((s) => s.type !== "null") : prop;
      return { name, required: required.has(name), policy: policies[name], schema: inner, ...describe(inner) };
    });
  }

  requiredNames(collection) { return this.struct(collection).required.filter((n) => n !== "id"); }

  /** Why `value` is not a valid `field` of `collection`, or null. */
  check(collection, field, value) {
    const prop = this.struct(collection).properties[field];
    if (!prop) return "unknown";
    if (value === null || value === undefined) {
      return prop.anyOf && prop.anyOf.some((s) => s.type === "null") ? null : "required";
    }
    const inner = prop.anyOf ? prop.anyOf.find((s) => s.type !== "null") : prop;
    return checkValue(inner, value);
  }
}

function describe(s) {
  if (s.enum) return { type: "enum", enum: s.enum };
  if (s.type === "integer") return { type: "integer", min: s.minimum, max: s.maximum };
  if (s.type === "number") return { type: "number", min: s.minimum, max: s.maximum };
  if (s.type === "boolean") return { type: "boolean" };
  if (s.type === "array") return { type: s.items && s.items.type === "array" ? "route" : "set" };
  if (s.format === "date-time") return { type: "datetime" };
  if (s.format === "date") return { type: "date" };
  return { type: "string", maxLength: s.maxLength, long: !s.maxLength || s.maxLength > 500 };
}

export function checkValue(s, value) {
  if (s.anyOf) return s.anyOf.some((x) => checkValue(x, value) === null) ? null : "invalid";
  if (s.enum) return s.enum.includes(value) ? null : "enum";
  switch (s.type) {
    case "integer": if (!Number.isInteger(value)) return "integer"; return bounds(s, value);
    case "number": if (typeof value !== "number" || !Number.isFinite(value)) return "number"; return bounds(s, value);
    case "boolean": return typeof value === "boolean" ? null : "boolean";
    case "array": {
      if (!Array.isArray(value)) return "array";
      if (s.maxItems !== undefined && value.length > s.maxItems) return "too_many";
      if (s.prefixItems) return value.length === s.prefixItems.length && s.prefixItems.every((p, i) => checkValue(p, value[i]) === null) ? null : "invalid";
      return s.items ? value.map((v) => checkValue(s.items, v)).find((e) => e) || null : null;
    }
    case "string": {
      if (typeof value !== "string") return "string";
      if (s.minLength !== undefined && [...value].length < s.minLength) return "too_short";
      if (s.maxLength !== undefined && [...value].length > s.maxLength) return "too_long";
      if (new TextEncoder().encode(value).length > 65536) return "too_long";
      if (s.pattern && !new RegExp(s.pattern, "u").test(value)) return "pattern";
      if (s.format === "date-time" && !RFC3339.test(value)) return "datetime";
      if (s.format === "date" && !DATE.test(value)) return "date";
      return null;
    }
    default: return null;
  }
}

function bounds(s, v) {
  if (s.minimum !== undefined && v < s.minimum) return "min";
  if (s.maximum !== undefined && v > s.maximum) return "max";
  return null;
}

/** A local time as RFC 3339 with this phone's offset ("2026-11-30T09:15:00+07:00"). */
export function rfc3339(date = new Date()) {
  const off = -date.getTimezoneOffset();
  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const local = new Date(date.getTime() + off * 60000).toISOString().slice(0, 19);
  return `${local}${off >= 0 ? "+" : "-"}${pad(Math.trunc(off / 60))}:${pad(off % 60)}`;
}
