"use client";

import { useCallback, useEffect, useRef, useState, type Dispatch, type SetStateAction } from "react";
import { errorText } from "./api";

export interface Resource<T> {
  data: T | undefined;
  error: string;
  loading: boolean;
  /** Load again, keeping what is shown until the answer comes. */
  reload: () => void;
  setData: Dispatch<SetStateAction<T | undefined>>;
}

/** Data loaded by `load` on mount and whenever `deps` change; only the latest answer lands. */
export function useResource<T>(load: () => Promise<T>, deps: readonly unknown[]): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(true);
  const loader = useRef(load);
  loader.current = load;
  const latest = useRef(0);
  const mounted = useRef(true);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const reload = useCallback(() => {
    const call = ++latest.current;
    setLoading(true);
    loader.current().then(
      (answer) => {
        if (!mounted.current || call !== latest.current) return;
        setData(answer);
        setError("");
        setLoading(false);
      },
      (failure: unknown) => {
        if (!mounted.current || call !== latest.current) return;
        setError(errorText(failure));
        setLoading(false);
      },
    );
  }, []);

  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(reload, deps);

  return { data, error, loading, reload, setData };
}

/** Run `fn` every `ms` while mounted. */
export function useInterval(fn: () => void, ms: number | null): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const id = setInterval(() => ref.current(), ms);
    return () => clearInterval(id);
  }, [ms]);
}
