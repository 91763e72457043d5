"use client";

import { useEffect, useRef, type ReactNode } from "react";

export function Card({
  title,
  actions,
  children,
  className = "",
  testId,
}: {
  title?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
  testId?: string;
}) {
  return (
    <section
      data-testid={testId}
      className={`min-w-0 rounded-lg border border-zinc-200 bg-white p-3 shadow-sm sm:p-4 dark:border-zinc-800 dark:bg-zinc-900 ${className}`}
    >
      {(title || actions) && (
        <header className="mb-2 flex flex-wrap items-center justify-between gap-2">
          {title && <h2 className="text-sm font-semibold tracking-wide uppercase text-zinc-500 dark:text-zinc-400">{title}</h2>}
          {actions && <div className="flex flex-wrap items-center gap-2">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function ErrorLine({ text, testId }: { text: string; testId?: string }) {
  if (!text) return null;
  return (
    <p role="alert" data-testid={testId} className="my-2 rounded bg-rose-50 px-2 py-1 text-sm text-rose-700 dark:bg-rose-950 dark:text-rose-300">
      {text}
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="py-2 text-sm text-zinc-500 dark:text-zinc-400">{children}</p>;
}

export const buttonClass =
  "inline-flex items-center justify-center gap-1 rounded-md border border-zinc-300 bg-white px-3 py-1.5 text-sm font-medium text-zinc-800 hover:bg-zinc-50 disabled:cursor-not-allowed disabled:opacity-50 dark:border-zinc-700 dark:bg-zinc-800 dark:text-zinc-100 dark:hover:bg-zinc-700";
export const primaryButtonClass =
  "inline-flex items-center justify-center gap-1 rounded-md bg-sky-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-sky-700 disabled:cursor-not-allowed disabled:opacity-50";
export const dangerButtonClass =
  "inline-flex items-center justify-center gap-1 rounded-md bg-rose-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-rose-700 disabled:cursor-not-allowed disabled:opacity-50";
export const inputClass =
  "rounded-md border border-zinc-300 bg-white px-2 py-1.5 text-sm text-zinc-900 placeholder:text-zinc-400 focus:border-sky-500 focus:outline-none dark:border-zinc-700 dark:bg-zinc-950 dark:text-zinc-100";
export const tableClass = "w-full min-w-max border-collapse text-sm";
export const thClass =
  "border-b border-zinc-200 px-2 py-1.5 text-left text-xs font-semibold uppercase tracking-wide text-zinc-500 dark:border-zinc-800 dark:text-zinc-400";
export const tdClass = "border-b border-zinc-100 px-2 py-1.5 align-top dark:border-zinc-800/60";
export const numClass = "text-right tabular-nums";

/** A table that scrolls sideways on a narrow screen. */
export function TableWrap({ children }: { children: ReactNode }) {
  return <div className="-mx-3 overflow-x-auto px-3 sm:mx-0 sm:px-0">{children}</div>;
}

const HEALTH_COLOURS: Record<string, string> = {
  up: "bg-emerald-100 text-emerald-800 ring-emerald-300 dark:bg-emerald-950 dark:text-emerald-300 dark:ring-emerald-800",
  degraded: "bg-amber-100 text-amber-800 ring-amber-300 dark:bg-amber-950 dark:text-amber-300 dark:ring-amber-800",
  silent: "bg-rose-100 text-rose-800 ring-rose-300 dark:bg-rose-950 dark:text-rose-300 dark:ring-rose-800",
  stopped: "bg-zinc-200 text-zinc-700 ring-zinc-300 dark:bg-zinc-800 dark:text-zinc-300 dark:ring-zinc-700",
};

export function Badge({ tone, children, testId }: { tone: string; children: ReactNode; testId?: string }) {
  const colour = HEALTH_COLOURS[tone] ?? HEALTH_COLOURS.stopped;
  return (
    <span data-testid={testId} className={`inline-flex items-center rounded px-1.5 py-0.5 text-xs font-medium ring-1 ring-inset ${colour}`}>
      {children}
    </span>
  );
}

/** Tone for an order's or a command's status. */
export function statusTone(status: string): string {
  switch (status) {
    case "filled":
    case "applied":
    case "active":
      return "up";
    case "rejected":
    case "refused":
    case "expired":
    case "halted":
      return "silent";
    case "cancelled":
      return "stopped";
    default:
      return "degraded";
  }
}

/** A modal confirmation: names what will happen, Yes or No. */
export function ConfirmDialog({
  title,
  children,
  confirmLabel = "Yes",
  busy = false,
  error = "",
  onConfirm,
  onCancel,
}: {
  title: string;
  children: ReactNode;
  confirmLabel?: string;
  busy?: boolean;
  error?: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const noRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    noRef.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onCancel();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onCancel]);
  return (
    <div className="fixed inset-0 z-50 flex items-end justify-center bg-black/40 p-2 sm:items-center sm:p-4">
      <div
        role="dialog"
        aria-modal="true"
        aria-labelledby="confirm-title"
        data-testid="confirm-dialog"
        className="w-full max-w-lg rounded-lg border border-zinc-200 bg-white p-4 shadow-xl dark:border-zinc-700 dark:bg-zinc-900"
      >
        <h2 id="confirm-title" className="mb-2 text-lg font-semibold">
          {title}
        </h2>
        <div className="mb-4 max-h-[50vh] overflow-y-auto text-sm">{children}</div>
        <ErrorLine text={error} />
        <div className="flex justify-end gap-2">
          <button ref={noRef} type="button" data-testid="confirm-no" className={buttonClass} onClick={onCancel}>
            No, cancel
          </button>
          <button
            type="button"
            data-testid="confirm-yes"
            data-control="true"
            className={dangerButtonClass}
            disabled={busy}
            onClick={onConfirm}
          >
            {confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
