"use client";

import Link from "next/link";
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import {
  Badge,
  buttonClass,
  Card,
  Empty,
  ErrorLine,
  inputClass,
  primaryButtonClass,
  TableWrap,
  tdClass,
  thClass,
} from "@/components/ui";
import { ApiError, apiGet, apiPost, errorText } from "@/lib/api";
import { fmtTime, pairKey, signClass, signed } from "@/lib/format";
import { fieldErrors, paramKind, paramText, paramValue, type ParamKind } from "@/lib/params";
import { useSession } from "@/lib/session";
import { useDebounced, useOnReconnect, useStreamEvents } from "@/lib/stream";
import type { CommandStatus, ParamSpec, ParamValue, StrategiesView, StrategyView } from "@/lib/types";
import { useResource } from "@/lib/useResource";

function Direction({ value }: { value: number | undefined }) {
  if (value === undefined || value === 0) return null;
  return value > 0 ? (
    <span className="text-emerald-600 dark:text-emerald-400" title="up">
      ▲
    </span>
  ) : (
    <span className="text-rose-600 dark:text-rose-400" title="down">
      ▼
    </span>
  );
}

function Toggle({
  row,
  pending,
  onToggle,
}: {
  row: StrategyView;
  pending: boolean;
  onToggle: () => void;
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={row.enabled}
      aria-label={`${row.enabled ? "Disable" : "Enable"} ${row.strategy} on ${row.symbol}`}
      data-testid="strategy-toggle"
      data-control="true"
      disabled={pending}
      onClick={onToggle}
      className={`relative inline-flex h-6 w-11 shrink-0 items-center rounded-full transition-colors disabled:opacity-60 ${
        row.enabled ? "bg-emerald-500" : "bg-zinc-300 dark:bg-zinc-700"
      }`}
    >
      <span
        className={`inline-block h-5 w-5 rounded-full bg-white shadow transition-transform ${
          row.enabled ? "translate-x-5" : "translate-x-0.5"
        }`}
      />
    </button>
  );
}

/** Which strategy and symbol the form changes ("" symbol: every one). */
interface Target {
  strategy: string;
  symbol: string;
}

const targetKey = (t: Target) => `${t.strategy}\u0000${t.symbol}`;

function ParamsForm({
  view,
  target,
  setTarget,
  onSent,
}: {
  view: StrategiesView;
  target: Target;
  setTarget: (t: Target) => void;
  onSent: (command: CommandStatus) => void;
}) {
  const specs: ParamSpec[] = useMemo(() => view.declared[target.strategy] ?? [], [view, target.strategy]);
  const names = specs.map((s) => s.name);
  const effective: Record<string, ParamValue> = useMemo(() => {
    const row =
      view.strategies.find((r) => r.strategy === target.strategy && r.symbol === target.symbol) ??
      view.strategies.find((r) => r.strategy === target.strategy);
    const defaults: Record<string, ParamValue> = {};
    for (const s of specs) if (s.default !== null) defaults[s.name] = s.default;
    return { ...defaults, ...(row?.params ?? {}) };
  }, [view, target, specs]);

  const [draft, setDraft] = useState<Record<string, string | boolean>>({});
  // Fields the user edited keep their text; the others follow the effective values.
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set());
  const touchedRef = useRef(touched);
  touchedRef.current = touched;
  // Values sent and not yet in effect: their fields turn untouched once they are.
  const waiting = useRef<Record<string, ParamValue>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState("");

  const fresh = useMemo(() => {
    const values: Record<string, string | boolean> = {};
    for (const s of specs) {
      const kind = paramKind(s);
      values[s.name] = kind === "bool" ? effective[s.name] === true : paramText(effective[s.name]);
    }
    return values;
  }, [specs, effective]);

  // The form starts from the target's effective values (it is keyed by its target).
  const freshKey = JSON.stringify(fresh);
  useEffect(() => {
    const done = Object.keys(waiting.current).filter((n) => String(fresh[n]) === String(waiting.current[n]));
    for (const n of done) delete waiting.current[n];
    const keep = new Set([...touchedRef.current].filter((n) => !done.includes(n)));
    setDraft((d) => {
      const next = { ...fresh };
      for (const n of keep) if (n in d) next[n] = d[n];
      return next;
    });
    if (done.length) setTouched(keep);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [freshKey]);

  const edit = (name: string, value: string | boolean) => {
    setDraft((d) => ({ ...d, [name]: value }));
    setTouched((t) => new Set(t).add(name));
    setErrors((e) => {
      if (!e[name]) return e;
      const next = { ...e };
      delete next[name];
      return next;
    });
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const params: Record<string, ParamValue> = {};
    for (const s of specs) {
      const kind = paramKind(s);
      const now = draft[s.name];
      // What was edited, even back to its current value: the user asked for it.
      if (now === undefined || !touched.has(s.name)) continue;
      if (kind !== "bool" && kind !== "str" && String(now).trim() === "") continue;
      params[s.name] = paramValue(kind, now);
    }
    if (Object.keys(params).length === 0) {
      setErrors({});
      setSent("Nothing to save: edit a parameter first.");
      return;
    }
    setBusy(true);
    setErrors({});
    setSent("");
    try {
      const command = await apiPost<CommandStatus>(
        `/controls/strategies/${encodeURIComponent(target.strategy)}/params`,
        { symbol: target.symbol, params },
      );
      onSent(command);
      setSent(`Sent ${Object.keys(params).join(", ")}: command ${command.command_id} ${command.status}.`);
      waiting.current = { ...waiting.current, ...params };
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 422) {
        setErrors(fieldErrors(failure.detail, names));
      } else {
        setErrors({ "": errorText(failure) });
      }
    } finally {
      setBusy(false);
    }
  };

  const strategies = Object.keys(view.declared).sort();
  const symbolsOf = (strategy: string) =>
    view.strategies.filter((r) => r.strategy === strategy).map((r) => r.symbol);

  return (
    <form onSubmit={submit} data-testid="params-form" data-control="true" data-strategy={target.strategy} data-symbol={target.symbol} className="flex flex-col gap-3">
      <div className="grid grid-cols-2 gap-2">
        <label className="flex flex-col gap-1 text-xs">
          Strategy
          <select
            data-testid="params-strategy"
            className={inputClass}
            value={target.strategy}
            onChange={(e) => setTarget({ strategy: e.target.value, symbol: symbolsOf(e.target.value)[0] ?? "" })}
          >
            {strategies.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label className="flex flex-col gap-1 text-xs">
          Symbol
          <select
            data-testid="params-symbol"
            className={inputClass}
            value={target.symbol}
            onChange={(e) => setTarget({ strategy: target.strategy, symbol: e.target.value })}
          >
            {symbolsOf(target.strategy).map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
            <option value="">every symbol</option>
          </select>
        </label>
      </div>
      {specs.length === 0 && <Empty>This strategy declares no parameters.</Empty>}
      <div className="grid gap-2 sm:grid-cols-2">
        {specs.map((s) => {
          const kind: ParamKind = paramKind(s);
          const error = errors[s.name];
          const id = `param-${s.name}`;
          return (
            <div key={s.name} className="flex flex-col gap-1">
              {kind === "bool" ? (
                <label className="flex items-center gap-2 text-sm" htmlFor={id}>
                  <input
                    id={id}
                    data-testid={id}
                    name={s.name}
                    type="checkbox"
                    className="h-4 w-4"
                    checked={draft[s.name] === true}
                    onChange={(e) => edit(s.name, e.target.checked)}
                    aria-invalid={error ? true : undefined}
                  />
                  {s.name}
                  <span className="text-xs text-zinc-400">bool</span>
                </label>
              ) : (
                <>
                  <label className="flex items-baseline justify-between text-xs" htmlFor={id}>
                    <span className="font-medium">{s.name}</span>
                    <span className="text-zinc-400">
                      {kind === "number" ? "number" : kind}
                      {s.default !== null ? ` · default ${String(s.default)}` : ""}
                    </span>
                  </label>
                  <input
                    id={id}
                    data-testid={id}
                    name={s.name}
                    type="text"
                    inputMode={kind === "int" ? "numeric" : kind === "str" ? "text" : "decimal"}
                    autoComplete="off"
                    className={`${inputClass} ${error ? "border-rose-500 dark:border-rose-500" : ""}`}
                    value={typeof draft[s.name] === "string" ? (draft[s.name] as string) : ""}
                    onChange={(e) => edit(s.name, e.target.value)}
                    aria-invalid={error ? true : undefined}
                    aria-describedby={error ? `param-error-${s.name}` : undefined}
                  />
                </>
              )}
              {error && (
                <p id={`param-error-${s.name}`} data-testid={`param-error-${s.name}`} role="alert" className="text-xs text-rose-600 dark:text-rose-400">
                  {error}
                </p>
              )}
            </div>
          );
        })}
      </div>
      <ErrorLine text={errors[""] ?? ""} testId="params-error" />
      {sent && <p data-testid="params-sent" className="text-sm text-emerald-700 dark:text-emerald-400">{sent}</p>}
      <div className="flex gap-2">
        <button type="submit" data-testid="params-save" data-control="true" className={primaryButtonClass} disabled={busy || specs.length === 0}>
          {busy ? "Saving…" : "Save parameters"}
        </button>
        <button
          type="button"
          className={buttonClass}
          onClick={() => {
            setTouched(new Set());
            waiting.current = {};
            setDraft(fresh);
            setErrors({});
            setSent("");
          }}
        >
          Reset
        </button>
      </div>
    </form>
  );
}

export default function StrategiesPage() {
  const { isTrader } = useSession();
  const view = useResource(() => apiGet<StrategiesView>("/strategies"), []);
  const [pending, setPending] = useState<Record<string, boolean>>({});
  const [toggleError, setToggleError] = useState("");
  const [target, setTarget] = useState<Target | null>(null);

  const refresh = useDebounced(() => view.reload(), 250);
  const refreshSlow = useDebounced(() => view.reload(), 1000);
  useStreamEvents(["command", "ack"], refresh);
  useStreamEvents(["signal", "indicators"], refreshSlow);
  useOnReconnect(view.reload);

  const rows = useMemo(
    () =>
      [...(view.data?.strategies ?? [])].sort(
        (a, b) => a.strategy.localeCompare(b.strategy) || a.symbol.localeCompare(b.symbol),
      ),
    [view.data],
  );

  // The form's target: the first row until one is chosen.
  useEffect(() => {
    if (target || !view.data) return;
    const first = rows[0];
    if (first) setTarget({ strategy: first.strategy, symbol: first.symbol });
    else {
      const declared = Object.keys(view.data.declared).sort()[0];
      if (declared) setTarget({ strategy: declared, symbol: "" });
    }
  }, [rows, target, view.data]);

  // A pending toggle ends when the row shows the state asked for.
  useEffect(() => {
    setPending((p) => {
      const next: Record<string, boolean> = {};
      for (const [key, wanted] of Object.entries(p)) {
        const row = rows.find((r) => pairKey(r.strategy, r.symbol) === key);
        if (row && row.enabled !== wanted) next[key] = wanted;
      }
      return Object.keys(next).length === Object.keys(p).length ? p : next;
    });
  }, [rows]);

  const toggle = async (row: StrategyView) => {
    const key = pairKey(row.strategy, row.symbol);
    const wanted = !row.enabled;
    setPending((p) => ({ ...p, [key]: wanted }));
    setToggleError("");
    try {
      await apiPost<CommandStatus>(
        `/controls/strategies/${encodeURIComponent(row.strategy)}/${wanted ? "enable" : "disable"}`,
        { symbol: row.symbol },
      );
      view.reload();
    } catch (failure) {
      setToggleError(`${row.strategy} ${row.symbol}: ${errorText(failure)}`);
      setPending((p) => {
        const next = { ...p };
        delete next[key];
        return next;
      });
    }
  };

  return (
    <div className="flex flex-col gap-4">
      <Card title="Strategies">
        {rows.length > 0 ? (
          <TableWrap>
            <table className="w-full min-w-[44rem] border-collapse text-sm">
              <thead>
                <tr>
                  <th className={thClass}>Strategy</th>
                  <th className={thClass}>Symbol</th>
                  <th className={thClass}>Enabled</th>
                  <th className={thClass}>Bars</th>
                  <th className={thClass}>Parameters</th>
                  <th className={thClass}>Last signal</th>
                  <th className={thClass}>Indicators (last bar)</th>
                  {isTrader && <th className={thClass} />}
                </tr>
              </thead>
              <tbody>
                {rows.map((row) => {
                  const key = pairKey(row.strategy, row.symbol);
                  const isPending = key in pending;
                  const ind = row.indicators;
                  const chosen = target && target.strategy === row.strategy && target.symbol === row.symbol;
                  return (
                    <tr
                      key={key}
                      data-testid="strategy-row"
                      data-strategy={row.strategy}
                      data-symbol={row.symbol}
                      data-enabled={row.enabled ? "true" : "false"}
                      className={chosen && isTrader ? "bg-sky-50/60 dark:bg-sky-950/30" : ""}
                    >
                      <td className={`${tdClass} font-medium`}>{row.strategy}</td>
                      <td className={tdClass}>
                        <Link
                          className="text-sky-700 hover:underline dark:text-sky-400"
                          href={`/chart/?symbol=${encodeURIComponent(row.symbol)}&interval=${encodeURIComponent(row.bar_interval || "1s")}`}
                        >
                          {row.symbol}
                        </Link>
                      </td>
                      <td className={tdClass}>
                        {isTrader ? (
                          <div className="flex items-center gap-2">
                            <Toggle row={row} pending={isPending} onToggle={() => void toggle(row)} />
                            <span className="text-xs text-zinc-500">
                              {isPending ? "pending…" : row.enabled ? "on" : "off"}
                            </span>
                          </div>
                        ) : (
                          <Badge tone={row.enabled ? "up" : "stopped"}>{row.enabled ? "enabled" : "disabled"}</Badge>
                        )}
                      </td>
                      <td className={tdClass}>{row.bar_interval}</td>
                      <td className={`${tdClass} max-w-64 font-mono text-xs break-words`}>
                        {Object.entries(row.params)
                          .map(([k, v]) => `${k}=${String(v)}`)
                          .join(" ")}
                      </td>
                      <td className={tdClass}>
                        <span data-testid="last-signal">
                          {row.last_signal ? (
                            <>
                              <span className={`font-semibold ${signClass(row.last_signal.target_position)}`}>
                                {signed(row.last_signal.target_position)}
                              </span>
                              {row.last_signal.reference_price ? ` @ ${row.last_signal.reference_price}` : ""}{" "}
                              <span className="text-xs text-zinc-500">· {fmtTime(row.last_signal.ts_event)}</span>
                            </>
                          ) : (
                            "—"
                          )}
                        </span>
                        {row.last_signal?.reason && (
                          <div className="max-w-56 truncate text-xs text-zinc-500" title={row.last_signal.reason}>
                            {row.last_signal.reason}
                          </div>
                        )}
                      </td>
                      <td className={tdClass}>
                        {ind ? (
                          <div className="flex flex-col gap-0.5">
                            <div className="flex flex-wrap gap-x-3 gap-y-0.5 text-sm">
                              {Object.entries(ind.values).map(([name, value]) => (
                                <span key={name} className="whitespace-nowrap">
                                  <span className="text-xs text-zinc-500">{name} </span>
                                  <span data-testid={`indicator-${name}`} className="font-mono">
                                    {value ?? "—"}
                                  </span>{" "}
                                  <Direction value={ind.directions?.[name]} />
                                </span>
                              ))}
                            </div>
                            <span className="text-xs text-zinc-500">{fmtTime(ind.ts_event)}</span>
                          </div>
                        ) : (
                          <span className="text-zinc-400">—</span>
                        )}
                      </td>
                      {isTrader && (
                        <td className={tdClass}>
                          <button
                            type="button"
                            data-testid="params-edit"
                            className={buttonClass}
                            onClick={() => setTarget({ strategy: row.strategy, symbol: row.symbol })}
                          >
                            Parameters
                          </button>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        ) : (
          !view.error && <Empty>{view.loading ? "Loading…" : "No strategy is configured."}</Empty>
        )}
        <ErrorLine text={view.error || toggleError} />
      </Card>

      {isTrader && view.data && target && (
        <Card title="Parameters" className="max-w-3xl">
          <ParamsForm
            key={targetKey(target)}
            view={view.data}
            target={target}
            setTarget={setTarget}
            onSent={() => view.reload()}
          />
        </Card>
      )}
    </div>
  );
}
