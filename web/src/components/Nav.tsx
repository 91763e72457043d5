"use client";

import Link from "next/link";
import { usePathname, useRouter } from "next/navigation";
import { useSession } from "@/lib/session";
import { useStream } from "@/lib/stream";

const LINKS = [
  { href: "/", label: "Overview", testId: "nav-overview" },
  { href: "/blotter/", label: "Blotter", testId: "nav-blotter" },
  { href: "/strategies/", label: "Strategies", testId: "nav-strategies" },
  { href: "/chart/", label: "Chart", testId: "nav-chart" },
  { href: "/controls/", label: "Controls", testId: "nav-controls" },
];

function isCurrent(pathname: string, href: string): boolean {
  const path = pathname.endsWith("/") ? pathname : `${pathname}/`;
  return href === "/" ? path === "/" : path.startsWith(href);
}

export function Nav() {
  const pathname = usePathname() ?? "/";
  const router = useRouter();
  const { me, logout } = useSession();
  const { status } = useStream();
  const live = status === "live";

  const onLogout = async () => {
    router.push("/login/");
    await logout();
  };

  return (
    <header className="sticky top-0 z-40 border-b border-zinc-200 bg-white/90 backdrop-blur dark:border-zinc-800 dark:bg-zinc-950/90">
      <div className="mx-auto flex max-w-7xl flex-wrap items-center gap-x-4 gap-y-2 px-3 py-2 sm:px-4">
        <Link href="/" className="font-semibold tracking-tight">
          ticklane
        </Link>
        <nav className="order-3 -mx-1 flex w-full flex-wrap gap-1 sm:order-none sm:mx-0 sm:w-auto" aria-label="Main">
          {LINKS.map((link) => {
            const current = isCurrent(pathname, link.href);
            return (
              <Link
                key={link.href}
                href={link.href}
                data-testid={link.testId}
                aria-current={current ? "page" : undefined}
                className={`whitespace-nowrap rounded-md px-2 py-1 text-sm sm:px-2.5 ${
                  current
                    ? "bg-zinc-900 text-white dark:bg-zinc-100 dark:text-zinc-900"
                    : "text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
                }`}
              >
                {link.label}
              </Link>
            );
          })}
        </nav>
        <div className="ml-auto flex items-center gap-3 text-sm">
          <span className="flex items-center gap-1.5" title="The live stream of changes">
            <span
              aria-hidden="true"
              className={`inline-block h-2.5 w-2.5 rounded-full ${live ? "bg-emerald-500" : "bg-rose-500"}`}
            />
            <span
              data-testid="stream-status"
              className={live ? "text-emerald-700 dark:text-emerald-400" : "text-rose-700 dark:text-rose-400"}
            >
              {live ? "live" : "disconnected"}
            </span>
          </span>
          {me ? (
            <>
              <span data-testid="whoami" className="text-zinc-600 dark:text-zinc-300">
                {me.user} <span className="text-zinc-400">({me.role})</span>
              </span>
              {me.user === "anonymous" ? (
                <Link href="/login/" className="text-sky-700 hover:underline dark:text-sky-400">
                  Log in
                </Link>
              ) : (
                <button
                  type="button"
                  data-testid="logout"
                  onClick={onLogout}
                  className="rounded-md px-2 py-1 text-zinc-600 hover:bg-zinc-100 dark:text-zinc-300 dark:hover:bg-zinc-800"
                >
                  Log out
                </button>
              )}
            </>
          ) : me === null ? (
            <>
              <span data-testid="whoami" className="text-zinc-500">
                not logged in
              </span>
              {!pathname.startsWith("/login") && (
                <Link href="/login/" className="text-sky-700 hover:underline dark:text-sky-400">
                  Log in
                </Link>
              )}
            </>
          ) : (
            <span data-testid="whoami" className="text-zinc-400">
              …
            </span>
          )}
        </div>
      </div>
    </header>
  );
}
