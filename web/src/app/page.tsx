"use client";

import { useMemo, useState } from "react";
import {
  Badge,
  Card,
  Empty,
  ErrorLine,
  numClass,
  TableWrap,
  tableClass,
  tdClass,
  thClass,
  buttonClass,
} from "@/components/ui";
import { apiGet, apiPost, errorText } from "@/lib/api";
import { fmtTime, money, pairKey, signClass, signed } from "@/lib/format";
import { globalKillSwitch } from "@/lib/killswitch";
import { useSession } from "@/lib/session";
import { useDebounced, useOnReconnect, useStreamEvents } from "@/lib/stream";
import type {
  CommandStatus,
  DeadLetters,
  KillSwitchState,
  NetPositionView,
  PnlView,
  PositionView,
  ProcessView,
} from "@/lib/types";
import { KILL_SWITCH_STATES } from "@/lib/types";
import { useCommands } from "@/lib/useCommands";
import { useInterval, useResource } from "@/lib/useResource";

interface Row {
  strategy: string;
  symbol: string;
  quantity: number;
  avgPrice: string;
  realized: string;
  unrealized: string | null;
  total: string | null;
  mark: string | null;
  fees: string;
}

function mergeRows(positions: PositionView[] | undefined, pnl: PnlView | undefined): Row[] {
  const rows = new Map<string, Row>();
  for (const p of positions ?? []) {
    rows.set(pairKey(p.strategy, p.symbol), {
      strategy: p.strategy,
      symbol: p.symbol,
      quantity: p.quantity,
      avgPrice: p.avg_price,
      realized: p.realized_pnl,
      unrealized: null,
      total: null,
      mark: null,
      fees: p.fees,
    });
  }
  for (const r of pnl?.rows ?? []) {
    const key = pairKey(r.strategy, r.symbol);
    const known = rows.get(key);
    rows.set(key, {
      strategy: r.strategy,
      symbol: r.symbol,
      // The position as the executor last published it wins over the P&L's copy.
      quantity: known ? known.quantity : r.quantity,
      avgPrice: known ? known.avgPrice : r.avg_price,
      realized: r.realized,
      unrealized: r.unrealized,
      total: r.total,
      mark: r.mark,
      fees: r.fees,
    });
  }
  return [...rows.values()].sort(
    (a, b) => a.strategy.localeCompare(b.strategy) || a.symbol.localeCompare(b.symbol),
  );
}

const STATE_STYLE: Record<KillSwitchState, string> = {
  active: "bg-emerald-600 text-white",
  reducing: "bg-amber-500 text-white",
  halted: "bg-rose-600 text-white",
};

function Total({ label, value, testId }: { label: string; value: string | undefined; testId: string }) {
  return (
    <div className="rounded-md border border-zinc-200 p-2 dark:border-zinc-800">
      <div className="text-xs uppercase tracking-wide text-zinc-500 dark:text-zinc-400">{label}</div>
      <div data-testid={testId} className={`text-lg font-semibold tabular-nums ${signClass(value)}`}>
        {money(value)}
      </div>
    </div>
  );
}

function detailText(value: unknown): string {
  if (value === null || value === undefined) return "—";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function ProcessRow({ p }: { p: ProcessView }) {
  const details = Object.entries(p.details ?? {});
  return (
    <li
      data-testid="process-row"
      data-process={p.process}
      data-health={p.health}
      className="flex min-w-0 flex-col gap-1 rounded-md border border-zinc-200 p-2 dark:border-zinc-800"
    >
      <div className="flex flex-wrap items-center gap-2">
        <Badge tone={p.health}>{p.health}</Badge>
        <span className="font-medium">{p.process}</span>
        <span className="truncate text-xs text-zinc-500 dark:text-zinc-400" title={p.instance}>
          {p.instance}
        </span>
        <span className="ml-auto text-xs text-zinc-500 dark:text-zinc-400" title={fmtTime(p.last_seen)}>
          {p.state}
          {Number.isFinite(p.seconds_since) ? ` · ${Math.round(p.seconds_since)} s ago` : ""}
          {p.lag !== null && p.lag !== undefined && p.lag >= 0 ? ` · lag ${p.lag}` : ""}
        </span>
      </div>
      {p.reason && <div className="text-sm text-amber-700 dark:text-amber-300">{p.reason}</div>}
      {details.length > 0 && (
        <dl className="flex flex-wrap gap-x-3 gap-y-0.5 text-xs text-zinc-600 dark:text-zinc-400">
          {details.map(([key, value]) => (
            <div key={key} className="flex min-w-0 gap-1">
              <dt className="shrink-0 text-zinc-400 dark:text-zinc-500">{key}</dt>
              <dd className="min-w-0 font-mono break-all">{detailText(value)}</dd>
            </div>
          ))}
        </dl>
      )}
    </li>
  );
}

export default function OverviewPage() {
  const { isTrader } = useSession();
  const positions = useResource(() => apiGet<PositionView[]>("/positions"), []);
  const pnl = useResource(() => apiGet<PnlView>("/pnl"), []);
  const net = useResource(() => apiGet<NetPositionView[]>("/positions/net"), []);
  const processes = useResource(() => apiGet<ProcessView[]>("/processes"), []);
  const deadLetters = useResource(() => apiGet<DeadLetters>("/dead-letters", { limit: 5 }), []);
  const commands = useCommands(50);
  const [ksBusy, setKsBusy] = useState(false);
  const [ksError, setKsError] = useState("");

  const refreshBook = useDebounced(() => {
    positions.reload();
    pnl.reload();
    net.reload();
  }, 250);
  const refreshPnl = useDebounced(() => pnl.reload(), 1000);
  const refreshHealth = useDebounced(() => processes.reload(), 250);

  useStreamEvents(["position", "fill", "order"], refreshBook);
  useStreamEvents(["bar"], refreshPnl);
  useStreamEvents(["status"], refreshHealth);
  useOnReconnect(() => {
    positions.reload();
    pnl.reload();
    net.reload();
    processes.reload();
    deadLetters.reload();
  });
  useInterval(() => {
    processes.reload();
    deadLetters.reload();
  }, 5000);

  const rows = useMemo(() => mergeRows(positions.data, pnl.data), [positions.data, pnl.data]);
  const killSwitch = useMemo(
    () => globalKillSwitch(processes.data, commands.items),
    [processes.data, commands.items],
  );
  const sortedProcesses = useMemo(
    () =>
      [...(processes.data ?? [])].sort(
        (a, b) => a.process.localeCompare(b.process) || a.instance.localeCompare(b.instance),
      ),
    [processes.data],
  );

  const setKillSwitch = async (state: KillSwitchState) => {
    setKsBusy(true);
    setKsError("");
    try {
      const command = await apiPost<CommandStatus>("/controls/kill-switch", {
        state,
        strategy: "",
        symbol: "",
      });
      commands.add(command);
    } catch (error) {
      setKsError(errorText(error));
    } finally {
      setKsBusy(false);
    }
  };

  const p = pnl.data;
  return (
    <div className="flex flex-col gap-4">
      <div className="grid gap-4 lg:grid-cols-3">
        <Card title="Account" className="lg:col-span-2">
          <div className="grid grid-cols-2 gap-2 sm:grid-cols-4">
            <Total label="Realized" value={p?.realized} testId="pnl-total-realized" />
            <Total label="Unrealized" value={p?.unrealized} testId="pnl-total-unrealized" />
            <Total label={p ? `Today (${p.day} UTC)` : "Today"} value={p?.day_realized} testId="pnl-day" />
            <Total label="Total" value={p?.total} testId="pnl-total" />
          </div>
          {p && <p className="mt-2 text-xs text-zinc-500 dark:text-zinc-400">Fees paid {p.fees} (already in realized).</p>}
          <ErrorLine text={pnl.error} />
        </Card>

        <Card title="Kill switch (everything)">
          <div className="flex flex-wrap items-center gap-2">
            <span
              data-testid="kill-switch-state"
              className={`rounded px-2 py-1 text-sm font-semibold ${STATE_STYLE[killSwitch.state]}`}
            >
              {killSwitch.state}
            </span>
            <span className="text-xs text-zinc-500 dark:text-zinc-400">
              {killSwitch.source === "executor"
                ? "as the executor reports it"
                : killSwitch.source === "command"
                  ? "as last applied"
                  : "no report yet"}
              {killSwitch.pending ? ` · ${killSwitch.pending} pending` : ""}
            </span>
          </div>
          {isTrader && (
            <div className="mt-3 flex flex-wrap gap-2">
              {KILL_SWITCH_STATES.map((state) => (
                <button
                  key={state}
                  type="button"
                  data-testid={`kill-switch-${state}`}
                  data-control="true"
                  aria-pressed={killSwitch.state === state}
                  disabled={ksBusy}
                  onClick={() => void setKillSwitch(state)}
                  className={
                    killSwitch.state === state
                      ? `${buttonClass} ring-2 ring-sky-500`
                      : buttonClass
                  }
                >
                  Set {state}
                </button>
              ))}
            </div>
          )}
          <ErrorLine text={ksError || commands.error} />
        </Card>
      </div>

      <Card
        title="Health"
        actions={
          <span className="text-sm">
            Dead letters:{" "}
            <span
              data-testid="dead-letter-count"
              className={`font-semibold tabular-nums ${deadLetters.data && deadLetters.data.count > 0 ? "text-rose-600 dark:text-rose-400" : ""}`}
            >
              {deadLetters.data ? deadLetters.data.count : "—"}
            </span>
          </span>
        }
      >
        {sortedProcesses.length > 0 ? (
          <ul className="grid gap-2 sm:grid-cols-2 xl:grid-cols-4">
            {sortedProcesses.map((proc) => (
              <ProcessRow key={`${proc.process}/${proc.instance}`} p={proc} />
            ))}
          </ul>
        ) : (
          !processes.error && <Empty>{processes.loading ? "Loading…" : "No process has reported yet."}</Empty>
        )}
        <ErrorLine text={processes.error} />
        {deadLetters.data && deadLetters.data.latest.length > 0 && (
          <details className="mt-2 text-sm">
            <summary className="cursor-pointer text-zinc-600 dark:text-zinc-300">Latest dead letters</summary>
            <ul className="mt-1 space-y-1">
              {deadLetters.data.latest.map((d) => (
                <li key={`${d.topic}/${d.partition}/${d.offset}`} className="font-mono text-xs">
                  {d.topic}[{d.partition}]@{d.offset} · {d.reason} · {d.size} B ·{" "}
                  {fmtTime(d.ts_ms * 1e6)}
                </li>
              ))}
            </ul>
          </details>
        )}
        <ErrorLine text={deadLetters.error} />
      </Card>

      <Card title="Positions and P&L by strategy and symbol">
        {rows.length > 0 ? (
          <TableWrap>
            <table className={tableClass}>
              <thead>
                <tr>
                  <th className={thClass}>Strategy</th>
                  <th className={thClass}>Symbol</th>
                  <th className={`${thClass} ${numClass}`}>Qty</th>
                  <th className={`${thClass} ${numClass}`}>Avg price</th>
                  <th className={`${thClass} ${numClass}`}>Mark</th>
                  <th className={`${thClass} ${numClass}`}>Realized</th>
                  <th className={`${thClass} ${numClass}`}>Unrealized</th>
                  <th className={`${thClass} ${numClass}`}>Total</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr
                    key={pairKey(r.strategy, r.symbol)}
                    data-testid="position-row"
                    data-strategy={r.strategy}
                    data-symbol={r.symbol}
                  >
                    <td className={tdClass}>{r.strategy}</td>
                    <td className={`${tdClass} font-medium`}>{r.symbol}</td>
                    <td data-testid="position-qty" className={`${tdClass} ${numClass} ${signClass(r.quantity)}`}>
                      {r.quantity}
                    </td>
                    <td className={`${tdClass} ${numClass}`}>{r.quantity !== 0 ? r.avgPrice : "—"}</td>
                    <td className={`${tdClass} ${numClass}`}>{money(r.mark)}</td>
                    <td data-testid="position-realized" className={`${tdClass} ${numClass} ${signClass(r.realized)}`}>
                      {money(r.realized)}
                    </td>
                    <td data-testid="position-unrealized" className={`${tdClass} ${numClass} ${signClass(r.unrealized)}`}>
                      {money(r.unrealized)}
                    </td>
                    <td className={`${tdClass} ${numClass} ${signClass(r.total)}`}>{money(r.total)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : (
          !positions.error && <Empty>{positions.loading ? "Loading…" : "No positions yet."}</Empty>
        )}
        <ErrorLine text={positions.error} />
        {net.data && net.data.length > 0 && (
          <div className="mt-3 flex flex-wrap gap-2 text-sm">
            <span className="text-zinc-500 dark:text-zinc-400">Net by symbol:</span>
            {net.data.map((n) => (
              <span key={n.symbol} className="rounded bg-zinc-100 px-2 py-0.5 tabular-nums dark:bg-zinc-800">
                {n.symbol} <span className={signClass(n.quantity)}>{signed(n.quantity)}</span>
              </span>
            ))}
          </div>
        )}
      </Card>
    </div>
  );
}
