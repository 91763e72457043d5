"use client";

import type { ReactNode } from "react";
import { SessionProvider } from "@/lib/session";
import { StreamProvider } from "@/lib/stream";

export function Providers({ children }: { children: ReactNode }) {
  return (
    <SessionProvider>
      <StreamProvider>{children}</StreamProvider>
    </SessionProvider>
  );
}
