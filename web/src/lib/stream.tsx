"use client";

// One EventSource on `/api/v1/stream` for the whole app. Views subscribe to the kinds they
// show; when the stream comes back after an error they are told to refetch their lists.

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import { usePathname } from "next/navigation";
import { API, apiGet } from "./api";
import { useSession } from "./session";

export type StreamStatus = "live" | "disconnected";
export type StreamHandler = (kind: string, data: unknown, id: number) => void;

/** The kinds the API sends (and the ones it is about to). */
export const KINDS = [
  "position",
  "order",
  "fill",
  "signal",
  "command",
  "ack",
  "status",
  "bar",
  "indicators",
] as const;

interface StreamApi {
  status: StreamStatus;
  subscribe: (kinds: readonly string[], handler: StreamHandler) => () => void;
  onReconnect: (handler: () => void) => () => void;
  restart: () => void;
}

const StreamContext = createContext<StreamApi | null>(null);

interface Subscription {
  kinds: Set<string>;
  handler: StreamHandler;
}

export function StreamProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<StreamStatus>("disconnected");
  const subscriptions = useRef(new Set<Subscription>());
  const reconnectHandlers = useRef(new Set<() => void>());
  const source = useRef<EventSource | null>(null);
  const lastId = useRef<number | null>(null);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const failures = useRef(0);
  const broken = useRef(false);
  const [generation, setGeneration] = useState(0);
  // Connect once we know who is asking; not from the login page while nobody is logged in
  // (elsewhere, /me's 401 may still come with open reads).
  const { me } = useSession();
  const pathname = usePathname() ?? "/";
  const enabled = me !== undefined && !(me === null && pathname.startsWith("/login"));

  const dispatch = useCallback((kind: string, event: MessageEvent) => {
    const id = Number(event.lastEventId);
    if (Number.isFinite(id) && event.lastEventId !== "") lastId.current = id;
    let data: unknown = event.data;
    try {
      data = JSON.parse(event.data as string);
    } catch {
      // not JSON: handed on as text
    }
    for (const sub of subscriptions.current) {
      if (sub.kinds.has(kind) || sub.kinds.has("*")) {
        try {
          sub.handler(kind, data, id);
        } catch (error) {
          console.error("stream handler", error);
        }
      }
    }
  }, []);

  useEffect(() => {
    if (!enabled) {
      setStatus("disconnected");
      return;
    }
    let closed = false;
    const connect = () => {
      if (closed) return;
      const url =
        lastId.current === null ? `${API}/stream` : `${API}/stream?after=${lastId.current}`;
      const es = new EventSource(url, { withCredentials: true });
      source.current = es;
      es.onopen = () => {
        failures.current = 0;
        setStatus("live");
        if (broken.current) {
          broken.current = false;
          for (const handler of reconnectHandlers.current) {
            try {
              handler();
            } catch (error) {
              console.error("reconnect handler", error);
            }
          }
        }
      };
      es.onerror = () => {
        setStatus("disconnected");
        broken.current = true;
        if (es.readyState === EventSource.CLOSED) {
          // The browser gave up (an HTTP error such as 401): try again ourselves, slower,
          // and ask a read whether the session has ended (its 401 goes to the login page).
          es.close();
          void apiGet("/positions/net").catch(() => undefined);
          if (source.current === es) source.current = null;
          failures.current += 1;
          const wait = Math.min(1000 * 2 ** Math.min(failures.current - 1, 4), 15000);
          if (timer.current) clearTimeout(timer.current);
          timer.current = setTimeout(connect, wait);
        }
      };
      es.onmessage = (event) => dispatch("message", event);
      for (const kind of KINDS) {
        es.addEventListener(kind, (event) => dispatch(kind, event as MessageEvent));
      }
    };
    connect();
    return () => {
      closed = true;
      if (timer.current) clearTimeout(timer.current);
      source.current?.close();
      source.current = null;
      setStatus("disconnected");
    };
  }, [dispatch, generation, enabled]);

  const subscribe = useCallback((kinds: readonly string[], handler: StreamHandler) => {
    const sub: Subscription = { kinds: new Set(kinds), handler };
    subscriptions.current.add(sub);
    return () => {
      subscriptions.current.delete(sub);
    };
  }, []);

  const onReconnect = useCallback((handler: () => void) => {
    reconnectHandlers.current.add(handler);
    return () => {
      reconnectHandlers.current.delete(handler);
    };
  }, []);

  const restart = useCallback(() => {
    broken.current = true;
    failures.current = 0;
    setGeneration((g) => g + 1);
  }, []);

  const value = useMemo(
    () => ({ status, subscribe, onReconnect, restart }),
    [status, subscribe, onReconnect, restart],
  );
  return <StreamContext.Provider value={value}>{children}</StreamContext.Provider>;
}

export function useStream(): StreamApi {
  const api = useContext(StreamContext);
  if (!api) throw new Error("useStream outside StreamProvider");
  return api;
}

/** Call `handler` for each event of `kinds` (the latest handler, without resubscribing). */
export function useStreamEvents(kinds: readonly string[], handler: StreamHandler): void {
  const { subscribe } = useStream();
  const ref = useRef(handler);
  ref.current = handler;
  const key = kinds.join(",");
  useEffect(
    () => subscribe(key.split(","), (kind, data, id) => ref.current(kind, data, id)),
    [subscribe, key],
  );
}

/** Call `handler` when the stream comes back after a break. */
export function useOnReconnect(handler: () => void): void {
  const { onReconnect } = useStream();
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => onReconnect(() => ref.current()), [onReconnect]);
}

/** A function that runs `fn` once, `ms` after the first of a burst of calls (so a steady
 * stream of events still refreshes every `ms`). */
export function useDebounced(fn: () => void, ms: number): () => void {
  const ref = useRef(fn);
  ref.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (timer.current) clearTimeout(timer.current);
    },
    [],
  );
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      ref.current();
    }, ms);
  }, [ms]);
}
