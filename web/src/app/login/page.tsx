"use client";

import { useRouter } from "next/navigation";
import { useState, type FormEvent } from "react";
import { buttonClass, Card, inputClass, primaryButtonClass } from "@/components/ui";
import { ApiError, apiPost, errorText } from "@/lib/api";
import { useSession } from "@/lib/session";
import { useStream } from "@/lib/stream";
import type { LoggedIn } from "@/lib/types";

/** Where to go after logging in: the `next` query parameter when it is a path here. */
function nextPath(): string {
  const next = new URLSearchParams(window.location.search).get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/";
}

export default function LoginPage() {
  const router = useRouter();
  const { me, loggedIn, logout } = useSession();
  const { restart } = useStream();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const answer = await apiPost<LoggedIn>("/login", { username, password });
      loggedIn(answer, answer.csrf_token);
      restart();
      router.push(nextPath());
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 429) {
        setError(`${errorText(failure)}`);
      } else if (failure instanceof ApiError && failure.status === 422) {
        setError("Enter a name and a password.");
      } else {
        setError(errorText(failure));
      }
      setBusy(false);
    }
  };

  return (
    <div className="mx-auto mt-6 max-w-sm">
      <Card title="Log in">
        {me && me.user !== "anonymous" && (
          <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-300">
            Logged in as {me.user} ({me.role}).{" "}
            <button type="button" className="text-sky-700 underline dark:text-sky-400" onClick={() => void logout()}>
              Log out
            </button>
          </p>
        )}
        <form onSubmit={submit} className="flex flex-col gap-3">
          <label className="flex flex-col gap-1 text-sm">
            Name
            <input
              data-testid="login-username"
              className={inputClass}
              name="username"
              autoComplete="username"
              autoCapitalize="none"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
            />
          </label>
          <label className="flex flex-col gap-1 text-sm">
            Password
            <input
              data-testid="login-password"
              className={inputClass}
              type="password"
              name="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
            />
          </label>
          {error && (
            <p role="alert" data-testid="login-error" className="rounded bg-rose-50 px-2 py-1 text-sm text-rose-700 dark:bg-rose-950 dark:text-rose-300">
              {error}
            </p>
          )}
          <div className="flex gap-2">
            <button data-testid="login-submit" type="submit" className={primaryButtonClass} disabled={busy}>
              {busy ? "Logging in…" : "Log in"}
            </button>
            <button type="button" className={buttonClass} onClick={() => router.push("/")}>
              Cancel
            </button>
          </div>
        </form>
      </Card>
    </div>
  );
}
