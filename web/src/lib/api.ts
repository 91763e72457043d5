// The API, same origin, relative URLs. Reads that answer 401 send the browser to the login
// page; every POST carries the session's CSRF token (kept in sessionStorage).

export const API = "/api/v1";
const CSRF_KEY = "ticklane.csrf";

export interface ValidationItem {
  loc?: (string | number)[];
  msg?: string;
  type?: string;
}

export type Detail = string | ValidationItem[] | unknown;

/** A refusal from the API: its status and its `detail`. */
export class ApiError extends Error {
  status: number;
  detail: Detail;

  constructor(status: number, detail: Detail) {
    super(describeDetail(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

/** A `detail` as one line: the string, or each validation error as `field: message`. */
export function describeDetail(detail: Detail): string {
  if (detail == null) return "";
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item: ValidationItem) => {
        const loc = (item.loc ?? []).filter((p) => p !== "body" && p !== "query");
        return loc.length ? `${loc.join(".")}: ${item.msg ?? ""}` : (item.msg ?? "");
      })
      .join("; ");
  }
  try {
    return JSON.stringify(detail);
  } catch {
    return String(detail);
  }
}

/** A message for any thrown value. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function getCsrf(): string {
  try {
    return window.sessionStorage.getItem(CSRF_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setCsrf(token: string | null): void {
  try {
    if (token) window.sessionStorage.setItem(CSRF_KEY, token);
    else window.sessionStorage.removeItem(CSRF_KEY);
  } catch {
    // storage unavailable (private mode): changes will be refused with 403, and said so
  }
}

/** Send the browser to the login page, coming back here afterwards. */
export function toLogin(): void {
  if (typeof window === "undefined") return;
  const here = window.location.pathname + window.location.search;
  if (window.location.pathname.startsWith("/login")) return;
  window.location.assign(`/login/?next=${encodeURIComponent(here)}`);
}

export type Query = Record<string, string | number | boolean | null | undefined>;

/** `path?query`, leaving out empty values. */
export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

async function parse(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function refusal(response: Response): Promise<ApiError> {
  const body = await parse(response);
  const detail =
    body && typeof body === "object" && "detail" in body
      ? (body as { detail: Detail }).detail
      : body || response.statusText;
  return new ApiError(response.status, detail);
}

export interface GetOptions {
  /** Do not go to the login page on 401 (e.g. `/me`). */
  quiet401?: boolean;
  signal?: AbortSignal;
}

/** GET `/api/v1{path}`; a 401 goes to the login page (unless `quiet401`). */
export async function apiGet<T>(path: string, query?: Query, options: GetOptions = {}): Promise<T> {
  const response = await fetch(withQuery(API + path, query), {
    headers: { Accept: "application/json" },
    credentials: "same-origin",
    cache: "no-store",
    signal: options.signal,
  });
  if (!response.ok) {
    const error = await refusal(response);
    if (response.status === 401 && !options.quiet401) toLogin();
    throw error;
  }
  return (await parse(response)) as T;
}

/** POST JSON to `/api/v1{path}` with the session's CSRF token. */
export async function apiPost<T>(path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const csrf = getCsrf();
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: "POST",
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const error = await refusal(response);
    if (response.status === 403 && !csrf) {
      error.message = `${error.message} (this tab has no session token: log out and in again)`;
    }
    throw error;
  }
  return (await parse(response)) as T;
}

/** Every page of a cursor-paged list, up to `maxPages`. */
export async function allPages<T>(
  path: string,
  query: Query,
  maxPages = 10,
): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let cursor = "";
  for (let page = 0; page < maxPages; page++) {
    const answer = await apiGet<{ items: T[]; next_cursor: string }>(path, { ...query, cursor });
    items.push(...answer.items);
    cursor = answer.next_cursor;
    if (!cursor) return { items, more: false };
  }
  return { items, more: true };
}
