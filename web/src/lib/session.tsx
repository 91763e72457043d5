"use client";

// Who is using the dashboard: `/api/v1/me` once on load and after login. `undefined` while
// asking, `null` when /me answers 401 (not logged in; reads may still be open).

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
import { ApiError, apiGet, apiPost, setCsrf } from "./api";
import type { Me } from "./types";

interface SessionApi {
  me: Me | null | undefined;
  /** A trader may use the controls; nobody else sees them. */
  isTrader: boolean;
  refresh: () => Promise<void>;
  loggedIn: (me: Me, csrf: string) => void;
  logout: () => Promise<void>;
}

const SessionContext = createContext<SessionApi | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  const retry = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refresh = useCallback(async () => {
    if (retry.current) clearTimeout(retry.current);
    try {
      setMe(await apiGet<Me>("/me", undefined, { quiet401: true }));
    } catch (error) {
      // Not logged in (or reads are open and /me says 401): nobody, so no controls.
      setMe(null);
      if (!(error instanceof ApiError && error.status < 500)) {
        // The API is unreachable or failing: ask again shortly.
        retry.current = setTimeout(() => void refresh(), 5000);
      }
    }
  }, []);

  useEffect(() => {
    void refresh();
    return () => {
      if (retry.current) clearTimeout(retry.current);
    };
  }, [refresh]);

  const loggedIn = useCallback((who: Me, csrf: string) => {
    setCsrf(csrf);
    setMe({ user: who.user, role: who.role });
  }, []);

  const logout = useCallback(async () => {
    try {
      await apiPost("/logout");
    } catch {
      // the session may have ended already
    }
    setCsrf(null);
    setMe(null);
  }, []);

  const value = useMemo(
    () => ({ me, isTrader: me?.role === "trader", refresh, loggedIn, logout }),
    [me, refresh, loggedIn, logout],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionApi {
  const api = useContext(SessionContext);
  if (!api) throw new Error("useSession outside SessionProvider");
  return api;
}
