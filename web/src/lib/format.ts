// Display helpers. Money stays the API's exact decimal string; only its sign is read.

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Nanoseconds since the epoch as local time, `YYYY-MM-DD HH:MM:SS.mmm`. */
export function fmtTime(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns) || ns <= 0) return "—";
  const date = new Date(ns / 1e6);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3)
  );
}

/** Only the clock part of `fmtTime`. */
export function fmtClock(ns: number | null | undefined): string {
  const text = fmtTime(ns);
  return text.length > 11 ? text.slice(11) : text;
}

/** The sign of a decimal string: -1, 0 or 1. */
export function signOf(value: string | number | null | undefined): number {
  if (value === null || value === undefined || value === "") return 0;
  const n = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(n) || n === 0) return 0;
  return n > 0 ? 1 : -1;
}

/** Tailwind colour classes for a gain or a loss. */
export function signClass(value: string | number | null | undefined): string {
  const sign = signOf(value);
  if (sign > 0) return "text-emerald-600 dark:text-emerald-400";
  if (sign < 0) return "text-rose-600 dark:text-rose-400";
  return "";
}

/** A money string as the API gave it, or a dash for none. */
export function money(value: string | null | undefined): string {
  return value === null || value === undefined || value === "" ? "—" : value;
}

/** A signed quantity: `+2`, `-1`, `0`. */
export function signed(quantity: number): string {
  return quantity > 0 ? `+${quantity}` : String(quantity);
}

/** A `datetime-local` input's value as ns since the epoch (as a decimal string), or "". */
export function localInputToNs(value: string): string {
  if (!value) return "";
  const ms = new Date(value).getTime();
  if (!Number.isFinite(ms)) return "";
  return (BigInt(Math.round(ms)) * BigInt(1_000_000)).toString();
}

/** `a/b` ids: strategy and symbol, for keys. */
export function pairKey(strategy: string, symbol: string): string {
  return `${strategy}\u0000${symbol}`;
}

export function sideClass(side: string): string {
  const s = side.toLowerCase();
  if (s.startsWith("buy")) return "text-emerald-600 dark:text-emerald-400";
  if (s.startsWith("sell")) return "text-rose-600 dark:text-rose-400";
  return "";
}
