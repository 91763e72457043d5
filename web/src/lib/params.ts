// The parameters form: input kinds from the declared types, values back to JSON, and a
// 422's detail placed at the field it names.

import type { Detail, ValidationItem } from "./api";
import { describeDetail } from "./api";
import type { ParamSpec, ParamValue } from "./types";

export type ParamKind = "int" | "float" | "number" | "bool" | "str";

/** The input for a declared parameter: its declared type, or (for a type the API names
 * otherwise, such as a constrained `Annotated[int, ...]`) the kind of its default. */
export function paramKind(spec: ParamSpec): ParamKind {
  const type = (spec.type || "").toLowerCase();
  if (type === "int" || type === "integer") return "int";
  if (type === "float" || type === "number") return "float";
  if (type === "bool" || type === "boolean") return "bool";
  if (type === "str" || type === "string") return "str";
  if (typeof spec.default === "boolean") return "bool";
  if (typeof spec.default === "number") return "number";
  return "str";
}

/** A value as the text an input shows. */
export function paramText(value: ParamValue | null | undefined): string {
  if (value === null || value === undefined) return "";
  return String(value);
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** An input's text as the JSON value to send: a number where it reads as one for a
 * numeric parameter (anything else is sent as typed, for the API to refuse by name). */
export function paramValue(kind: ParamKind, text: string | boolean): ParamValue {
  if (kind === "bool") return typeof text === "boolean" ? text : text === "true";
  const raw = String(text).trim();
  if (kind === "str") return String(text);
  return NUMBER.test(raw) ? Number(raw) : raw;
}

/** Errors by parameter name ("" for the form as a whole) from a 422's detail. */
export function fieldErrors(detail: Detail, names: string[]): Record<string, string> {
  const errors: Record<string, string> = {};
  const add = (name: string, message: string) => {
    errors[name] = errors[name] ? `${errors[name]}; ${message}` : message;
  };
  const place = (message: string, hint?: string | number) => {
    if (typeof hint === "string" && names.includes(hint)) return add(hint, message);
    const quoted = /parameter ['"`]([^'"`]+)['"`]/.exec(message);
    if (quoted && names.includes(quoted[1])) return add(quoted[1], message);
    // A rule across fields names them in its message: show it at each, and on the form.
    const mentioned = names.filter((n) => new RegExp(`(^|[^A-Za-z0-9_])${n}([^A-Za-z0-9_]|$)`).test(message));
    for (const n of mentioned) add(n, message);
    add("", message);
  };
  if (Array.isArray(detail)) {
    for (const item of detail as ValidationItem[]) {
      const loc = item.loc ?? [];
      place(item.msg ?? describeDetail([item]), loc.length ? loc[loc.length - 1] : undefined);
    }
  } else {
    place(describeDetail(detail));
  }
  return errors;
}
