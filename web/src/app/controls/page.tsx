"use client";

import { useMemo, useState } from "react";
import {
  Badge,
  buttonClass,
  Card,
  ConfirmDialog,
  dangerButtonClass,
  Empty,
  ErrorLine,
  inputClass,
  numClass,
  statusTone,
  TableWrap,
  tableClass,
  tdClass,
  thClass,
} from "@/components/ui";
import { apiGet, apiPost, errorText } from "@/lib/api";
import { fmtTime, signClass, signed } from "@/lib/format";
import { useSession } from "@/lib/session";
import { useDebounced, useOnReconnect, useStreamEvents } from "@/lib/stream";
import type { CommandStatus, KillSwitchState, PositionView } from "@/lib/types";
import { KILL_SWITCH_STATES } from "@/lib/types";
import { useCommands } from "@/lib/useCommands";
import { useResource } from "@/lib/useResource";

interface FlattenAsk {
  strategy: string;
  symbol: string;
}

function scopeText(strategy: string, symbol: string): string {
  if (!strategy && !symbol) return "everything";
  if (strategy && symbol) return `${strategy} in ${symbol}`;
  return strategy ? `strategy ${strategy} (every symbol)` : `symbol ${symbol} (every strategy)`;
}

function covered(positions: PositionView[], ask: FlattenAsk): PositionView[] {
  return positions
    .filter(
      (p) =>
        p.quantity !== 0 &&
        (!ask.strategy || p.strategy === ask.strategy) &&
        (!ask.symbol || p.symbol === ask.symbol),
    )
    .sort((a, b) => a.strategy.localeCompare(b.strategy) || a.symbol.localeCompare(b.symbol));
}

function commandDetail(c: CommandStatus): string {
  if (c.action === "kill_switch") return c.kill_switch ?? "";
  if (c.action === "set_params") {
    return Object.entries(c.params)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(" ");
  }
  return "";
}

function Answers({ c }: { c: CommandStatus }) {
  if (c.acks.length === 0) return <span className="text-xs text-zinc-500">waiting for an answer</span>;
  return (
    <ul className="flex flex-col gap-0.5 text-xs">
      {c.acks.map((a) => (
        <li key={`${a.by}/${a.ts_event}`} data-testid="command-ack" data-applied={a.applied ? "true" : "false"}>
          <span className={a.applied ? "text-emerald-700 dark:text-emerald-400" : "text-rose-700 dark:text-rose-400"}>
            {a.applied ? "applied" : "refused"}
          </span>{" "}
          by <span className="font-mono">{a.by}</span> at {fmtTime(a.ts_event)}
          {a.reason && <span className="text-zinc-600 dark:text-zinc-300">: {a.reason}</span>}
        </li>
      ))}
    </ul>
  );
}

export default function ControlsPage() {
  const { isTrader, me } = useSession();
  const positions = useResource(() => apiGet<PositionView[]>("/positions"), []);
  const commands = useCommands(50);
  const refreshPositions = useDebounced(() => positions.reload(), 250);
  useStreamEvents(["position", "fill"], refreshPositions);
  useOnReconnect(positions.reload);

  const [symbol, setSymbol] = useState("");
  const [strategy, setStrategy] = useState("");
  const [ask, setAsk] = useState<FlattenAsk | null>(null);
  const [busy, setBusy] = useState(false);
  const [dialogError, setDialogError] = useState("");
  const [note, setNote] = useState("");

  const [ksStrategy, setKsStrategy] = useState("");
  const [ksSymbol, setKsSymbol] = useState("");
  const [ksError, setKsError] = useState("");
  const [ksBusy, setKsBusy] = useState(false);

  const all = useMemo(() => positions.data ?? [], [positions.data]);
  const open = useMemo(() => all.filter((p) => p.quantity !== 0), [all]);
  const symbols = useMemo(() => [...new Set(all.map((p) => p.symbol))].sort(), [all]);
  const strategies = useMemo(() => [...new Set(all.map((p) => p.strategy))].sort(), [all]);

  // The latest applied kill switch per scope, from the commands loaded.
  const scopes = useMemo(() => {
    const latest = new Map<string, CommandStatus>();
    for (const c of commands.items ?? []) {
      if (c.action !== "kill_switch" || c.status !== "applied") continue;
      const key = `${c.strategy}\u0000${c.symbol}`;
      const known = latest.get(key);
      if (!known || c.ts_event > known.ts_event) latest.set(key, c);
    }
    return [...latest.values()].sort((a, b) => a.strategy.localeCompare(b.strategy) || a.symbol.localeCompare(b.symbol));
  }, [commands.items]);

  const openDialog = (next: FlattenAsk) => {
    setDialogError("");
    setNote("");
    setAsk(next);
    positions.reload();
  };

  const flatten = async () => {
    if (!ask) return;
    setBusy(true);
    setDialogError("");
    try {
      const command = await apiPost<CommandStatus>("/controls/flatten", ask);
      commands.add(command);
      setNote(`Flatten ${scopeText(ask.strategy, ask.symbol)} sent (command ${command.command_id}).`);
      setAsk(null);
    } catch (error) {
      setDialogError(errorText(error));
    } finally {
      setBusy(false);
    }
  };

  const setKillSwitch = async (state: KillSwitchState) => {
    setKsBusy(true);
    setKsError("");
    try {
      const command = await apiPost<CommandStatus>("/controls/kill-switch", {
        state,
        strategy: ksStrategy.trim(),
        symbol: ksSymbol.trim(),
      });
      commands.add(command);
    } catch (error) {
      setKsError(errorText(error));
    } finally {
      setKsBusy(false);
    }
  };

  const inScope = ask ? covered(all, ask) : [];

  return (
    <div className="flex flex-col gap-4">
      {!isTrader && me !== undefined && (
        <p className="rounded-md border border-zinc-200 bg-white p-3 text-sm text-zinc-600 dark:border-zinc-800 dark:bg-zinc-900 dark:text-zinc-300">
          Controls need a trader{me ? `; ${me.user} is a ${me.role}` : ""}. The commands and their answers are below.
        </p>
      )}

      {isTrader && (
        <div className="grid gap-4 lg:grid-cols-2">
          <Card title="Flatten">
            <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-300">
              Closes positions at market. Open now: {open.length === 0 ? "none" : open.length}.
            </p>
            <div className="flex flex-col gap-3">
              <div className="flex flex-wrap items-end gap-2">
                <label className="flex flex-1 flex-col gap-1 text-xs">
                  Symbol
                  <input
                    data-testid="flatten-symbol-input"
                    className={inputClass}
                    list="flatten-symbols"
                    value={symbol}
                    autoCapitalize="characters"
                    onChange={(e) => setSymbol(e.target.value)}
                    placeholder="e.g. ES"
                  />
                </label>
                <button
                  type="button"
                  data-testid="flatten-symbol"
                  data-control="true"
                  className={dangerButtonClass}
                  disabled={!symbol.trim()}
                  onClick={() => openDialog({ strategy: "", symbol: symbol.trim() })}
                >
                  Flatten symbol
                </button>
              </div>
              <div className="flex flex-wrap items-end gap-2">
                <label className="flex flex-1 flex-col gap-1 text-xs">
                  Strategy
                  <input
                    data-testid="flatten-strategy-input"
                    className={inputClass}
                    list="flatten-strategies"
                    value={strategy}
                    autoCapitalize="none"
                    onChange={(e) => setStrategy(e.target.value)}
                    placeholder="e.g. ema_cross"
                  />
                </label>
                <button
                  type="button"
                  data-testid="flatten-strategy"
                  data-control="true"
                  className={dangerButtonClass}
                  disabled={!strategy.trim()}
                  onClick={() => openDialog({ strategy: strategy.trim(), symbol: "" })}
                >
                  Flatten strategy
                </button>
              </div>
              <div>
                <button
                  type="button"
                  data-testid="flatten-all"
                  data-control="true"
                  className={dangerButtonClass}
                  onClick={() => openDialog({ strategy: "", symbol: "" })}
                >
                  Flatten everything
                </button>
              </div>
              <datalist id="flatten-symbols">
                {symbols.map((s) => (
                  <option key={s} value={s} />
                ))}
              </datalist>
              <datalist id="flatten-strategies">
                {strategies.map((s) => (
                  <option key={s} value={s} />
                ))}
              </datalist>
            </div>
            {note && <p data-testid="flatten-sent" className="mt-2 text-sm text-emerald-700 dark:text-emerald-400">{note}</p>}
            <ErrorLine text={positions.error} />
          </Card>

          <Card title="Kill switch by scope">
            <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-300">
              Leave both empty for everything. Active: all orders; reducing: only orders that reduce a position;
              halted: none.
            </p>
            <div className="grid grid-cols-2 gap-2">
              <label className="flex flex-col gap-1 text-xs">
                Strategy
                <input
                  data-testid="ks-strategy-input"
                  className={inputClass}
                  list="flatten-strategies"
                  value={ksStrategy}
                  autoCapitalize="none"
                  onChange={(e) => setKsStrategy(e.target.value)}
                  placeholder="every one"
                />
              </label>
              <label className="flex flex-col gap-1 text-xs">
                Symbol
                <input
                  data-testid="ks-symbol-input"
                  className={inputClass}
                  list="flatten-symbols"
                  value={ksSymbol}
                  autoCapitalize="characters"
                  onChange={(e) => setKsSymbol(e.target.value)}
                  placeholder="every one"
                />
              </label>
            </div>
            <div className="mt-3 flex flex-wrap gap-2">
              {KILL_SWITCH_STATES.map((state) => (
                <button
                  key={state}
                  type="button"
                  data-testid={`ks-set-${state}`}
                  data-control="true"
                  className={state === "halted" ? dangerButtonClass : buttonClass}
                  disabled={ksBusy}
                  onClick={() => void setKillSwitch(state)}
                >
                  Set {state} for {scopeText(ksStrategy.trim(), ksSymbol.trim())}
                </button>
              ))}
            </div>
            <ErrorLine text={ksError} />
            {scopes.length > 0 && (
              <div className="mt-3">
                <h3 className="mb-1 text-xs font-semibold uppercase text-zinc-500">Applied (latest per scope, of the commands loaded)</h3>
                <ul className="flex flex-col gap-1 text-sm">
                  {scopes.map((c) => (
                    <li key={c.command_id} data-testid="kill-switch-scope" className="flex items-center gap-2">
                      <Badge tone={statusTone(c.kill_switch ?? "")}>{c.kill_switch}</Badge>
                      {scopeText(c.strategy, c.symbol)}
                      <span className="text-xs text-zinc-500">{fmtTime(c.ts_event)}</span>
                    </li>
                  ))}
                </ul>
              </div>
            )}
          </Card>
        </div>
      )}

      <Card title="Commands" actions={<button type="button" className={buttonClass} onClick={commands.reload}>Refresh</button>}>
        {commands.items && commands.items.length > 0 ? (
          <TableWrap>
            <table className={tableClass}>
              <thead>
                <tr>
                  <th className={thClass}>Issued</th>
                  <th className={thClass}>Action</th>
                  <th className={thClass}>Scope</th>
                  <th className={thClass}>Detail</th>
                  <th className={thClass}>By</th>
                  <th className={thClass}>Status</th>
                  <th className={thClass}>Answers</th>
                </tr>
              </thead>
              <tbody>
                {commands.items.map((c) => (
                  <tr key={c.command_id} data-testid="command-row" data-command-id={c.command_id} data-action={c.action} data-status={c.status}>
                    <td className={`${tdClass} whitespace-nowrap`}>{fmtTime(c.ts_event)}</td>
                    <td className={`${tdClass} font-medium`}>{c.action}</td>
                    <td className={tdClass}>{scopeText(c.strategy, c.symbol)}</td>
                    <td className={`${tdClass} font-mono text-xs`}>{commandDetail(c)}</td>
                    <td className={tdClass}>{c.issued_by}</td>
                    <td className={tdClass}>
                      <Badge tone={statusTone(c.status)}>{c.status}</Badge>
                    </td>
                    <td className={tdClass}>
                      <Answers c={c} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : (
          !commands.error && <Empty>{commands.items ? "No command yet." : "Loading…"}</Empty>
        )}
        <ErrorLine text={commands.error} />
        {commands.nextCursor && (
          <button type="button" data-testid="commands-more" className={`${buttonClass} mt-2`} onClick={commands.loadMore}>
            Load more commands
          </button>
        )}
      </Card>

      {isTrader && ask && (
        <ConfirmDialog
          title={`Flatten ${scopeText(ask.strategy, ask.symbol)}?`}
          confirmLabel={busy ? "Sending…" : "Yes, flatten"}
          busy={busy}
          error={dialogError}
          onConfirm={() => void flatten()}
          onCancel={() => setAsk(null)}
        >
          <p className="mb-2">
            One flatten command for strategy <b>{ask.strategy || "every one"}</b>, symbol <b>{ask.symbol || "every one"}</b>.
          </p>
          {inScope.length > 0 ? (
            <>
              <p className="mb-1">It closes these {inScope.length} position(s), as they stand now:</p>
              <table data-testid="confirm-positions" className="w-full text-sm">
                <thead>
                  <tr>
                    <th className={thClass}>Strategy</th>
                    <th className={thClass}>Symbol</th>
                    <th className={`${thClass} ${numClass}`}>Qty</th>
                    <th className={`${thClass} ${numClass}`}>Avg price</th>
                  </tr>
                </thead>
                <tbody>
                  {inScope.map((p) => (
                    <tr key={`${p.strategy}/${p.symbol}`} data-testid="confirm-position" data-strategy={p.strategy} data-symbol={p.symbol}>
                      <td className={tdClass}>{p.strategy}</td>
                      <td className={tdClass}>{p.symbol}</td>
                      <td className={`${tdClass} ${numClass} ${signClass(p.quantity)}`}>{signed(p.quantity)}</td>
                      <td className={`${tdClass} ${numClass}`}>{p.avg_price}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : (
            <p data-testid="confirm-positions-none">
              No open position is in this scope now; the executor closes whatever is open there when it applies the
              command.
            </p>
          )}
        </ConfirmDialog>
      )}
    </div>
  );
}
