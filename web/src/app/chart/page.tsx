"use client";

import { useRouter, useSearchParams } from "next/navigation";
import { Suspense, useEffect, useMemo, useRef, useState } from "react";
import { Card, ErrorLine, inputClass } from "@/components/ui";
import { allPages, apiGet, errorText } from "@/lib/api";
import { useDebounced, useOnReconnect, useStream, useStreamEvents } from "@/lib/stream";
import type {
  BarView,
  BarsView,
  FillView,
  IndicatorView,
  IndicatorsView,
  PositionView,
  SignalView,
  StrategiesView,
} from "@/lib/types";
import { BAR_INTERVALS, INTERVAL_NS } from "@/lib/types";
import { useInterval, useResource } from "@/lib/useResource";
import { PriceChart, type ChartData } from "./PriceChart";

const MAX_PAGES = 50; // of 1000 bars
const PAGE = 1000;

/** Bars (or indicator points) from `since` on, every page up to `MAX_PAGES`. */
async function barsFrom(symbol: string, interval: string, since: number): Promise<BarView[]> {
  const bars: BarView[] = [];
  let from: number | null = since;
  for (let page = 0; page < MAX_PAGES && from !== null; page++) {
    const answer: BarsView = await apiGet<BarsView>("/bars", { symbol, interval, since: from, limit: PAGE });
    bars.push(...answer.bars);
    from = answer.next_since;
  }
  return bars;
}

async function indicatorsFrom(symbol: string, interval: string, since: number): Promise<IndicatorView[]> {
  const points: IndicatorView[] = [];
  let from: number | null = since;
  for (let page = 0; page < MAX_PAGES && from !== null; page++) {
    const answer: IndicatorsView = await apiGet<IndicatorsView>("/indicators", {
      symbol,
      interval,
      since: from,
      limit: PAGE,
    });
    points.push(...answer.points);
    from = answer.next_since;
  }
  return points;
}

/** The newest `ts_event` of some items, 0 for none. */
function newest(items: Iterable<{ ts_event: number }>): number {
  let latest = 0;
  for (const item of items) if (item.ts_event > latest) latest = item.ts_event;
  return latest;
}

function emptyData(): ChartData {
  return { bars: new Map(), indicators: new Map(), signals: new Map(), fills: new Map(), version: 0 };
}

function ChartView() {
  const params = useSearchParams();
  const router = useRouter();
  const { status } = useStream();
  const symbol = params.get("symbol") ?? "";
  const interval = (params.get("interval") ?? "") || "1s";
  const intervalNs = INTERVAL_NS[interval] ?? 1e9;

  // Symbols to pick from: those held and those the strategies trade.
  const choices = useResource(async () => {
    const [positions, strategies] = await Promise.all([
      apiGet<PositionView[]>("/positions").catch(() => [] as PositionView[]),
      apiGet<StrategiesView>("/strategies").catch(() => null),
    ]);
    const intervals = new Map<string, string>();
    for (const row of strategies?.strategies ?? []) if (!intervals.has(row.symbol)) intervals.set(row.symbol, row.bar_interval);
    for (const p of positions) if (!intervals.has(p.symbol)) intervals.set(p.symbol, "1s");
    return intervals;
  }, []);
  const symbols = useMemo(() => {
    const list = [...(choices.data?.keys() ?? [])];
    if (symbol && !list.includes(symbol)) list.push(symbol);
    return list.sort();
  }, [choices.data, symbol]);

  const go = (nextSymbol: string, nextInterval: string) => {
    router.replace(`/chart/?symbol=${encodeURIComponent(nextSymbol)}&interval=${encodeURIComponent(nextInterval)}`);
  };

  // No symbol asked for: the first one there is, at its strategy's interval.
  useEffect(() => {
    if (symbol || !choices.data) return;
    const first = [...choices.data.keys()].sort()[0];
    if (first) go(first, params.get("interval") || choices.data.get(first) || "1s");
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [symbol, choices.data]);

  const data = useRef<ChartData>(emptyData());
  const [version, setVersion] = useState(0);
  const [error, setError] = useState("");
  const [loading, setLoading] = useState(false);
  const generation = useRef(0);
  const tailBusy = useRef(false);
  const lastBarEvent = useRef(0);

  const bump = () => {
    data.current.version += 1;
    setVersion(data.current.version);
  };

  const mergeBars = (bars: BarView[]) => {
    for (const b of bars) data.current.bars.set(b.ts_event, b);
  };
  const mergeIndicators = (points: IndicatorView[]) => {
    for (const p of points) data.current.indicators.set(`${p.strategy}\u0000${p.ts_event}`, p);
  };

  const loadAll = async () => {
    if (!symbol) return;
    const gen = ++generation.current;
    data.current = emptyData();
    bump();
    setLoading(true);
    setError("");
    try {
      const [bars, points, signals, fills] = await Promise.all([
        barsFrom(symbol, interval, 0),
        indicatorsFrom(symbol, interval, 0).catch((e: unknown) => {
          setError(`indicators: ${errorText(e)}`);
          return [] as IndicatorView[];
        }),
        allPages<SignalView>("/signals", { symbol, limit: PAGE }, 5),
        allPages<FillView>("/fills", { symbol, limit: PAGE }, 5),
      ]);
      if (gen !== generation.current) return;
      mergeBars(bars);
      mergeIndicators(points);
      for (const s of signals.items) data.current.signals.set(s.signal_id, s);
      for (const f of fills.items) data.current.fills.set(f.fill_id, f);
      bump();
    } catch (e) {
      if (gen === generation.current) setError(errorText(e));
    } finally {
      if (gen === generation.current) setLoading(false);
    }
  };

  /** What changed since the newest bar, indicator point, signal and fill we hold. */
  const loadTail = async () => {
    if (!symbol || tailBusy.current) return;
    const gen = generation.current;
    tailBusy.current = true;
    try {
      const d = data.current;
      const lastBar = newest(d.bars.values());
      const lastPoint = newest(d.indicators.values());
      const lastSignal = newest(d.signals.values());
      const lastFill = newest(d.fills.values());
      const [bars, points, signals, fills] = await Promise.all([
        barsFrom(symbol, interval, lastBar),
        indicatorsFrom(symbol, interval, lastPoint).catch(() => [] as IndicatorView[]),
        apiGet<{ items: SignalView[] }>("/signals", { symbol, since: Math.max(0, lastSignal - 1e6), limit: PAGE }),
        apiGet<{ items: FillView[] }>("/fills", { symbol, since: Math.max(0, lastFill - 1e6), limit: PAGE }),
      ]);
      if (gen !== generation.current) return;
      mergeBars(bars);
      mergeIndicators(points);
      for (const s of signals.items) d.signals.set(s.signal_id, s);
      for (const f of fills.items) d.fills.set(f.fill_id, f);
      bump();
    } catch {
      // the next poll or event tries again
    } finally {
      tailBusy.current = false;
    }
  };

  useEffect(() => {
    void loadAll();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [symbol, interval]);

  const tailSoon = useDebounced(() => void loadTail(), 200);

  useStreamEvents(["bar", "indicators", "signal", "fill"], (kind, raw) => {
    if (!symbol || !raw || typeof raw !== "object") return;
    const event = raw as Record<string, unknown>;
    if (typeof event.symbol === "string" && event.symbol !== symbol) return;
    if (typeof event.interval === "string" && event.interval !== interval) return;
    if (kind === "signal" && typeof event.signal_id === "string") {
      data.current.signals.set(event.signal_id, raw as SignalView);
      bump();
      return;
    }
    if (kind === "fill" && typeof event.fill_id === "string") {
      data.current.fills.set(event.fill_id, raw as FillView);
      bump();
      return;
    }
    if (kind === "bar") {
      lastBarEvent.current = Date.now();
      const bar = raw as BarView;
      if (typeof event.symbol === "string" && typeof bar.ts_event === "number" && typeof bar.close === "string") {
        data.current.bars.set(bar.ts_event, bar);
        bump();
        return;
      }
    }
    tailSoon();
  });
  useOnReconnect(() => void loadTail());
  // The fallback: while no bar event has come for this symbol lately, poll the tail.
  useInterval(() => {
    if (status !== "live" || Date.now() - lastBarEvent.current > 3000) void loadTail();
  }, symbol ? 2000 : null);

  return (
    <div className="flex flex-col gap-3">
      <Card
        title={symbol ? `${symbol} · ${interval}` : "Chart"}
        actions={
          <>
            <label className="flex items-center gap-1 text-sm">
              <span className="text-zinc-500">Symbol</span>
              <select data-testid="chart-symbol" className={inputClass} value={symbol} onChange={(e) => go(e.target.value, interval)}>
                {!symbol && <option value="">—</option>}
                {symbols.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
            <label className="flex items-center gap-1 text-sm">
              <span className="text-zinc-500">Interval</span>
              <select data-testid="chart-interval" className={inputClass} value={interval} onChange={(e) => go(symbol, e.target.value)}>
                {BAR_INTERVALS.map((i) => (
                  <option key={i} value={i}>
                    {i}
                  </option>
                ))}
              </select>
            </label>
          </>
        }
      >
        <PriceChart data={data.current} version={version} intervalNs={intervalNs} />
        <div className="mt-2 flex flex-wrap gap-x-4 gap-y-1 text-xs text-zinc-500 dark:text-zinc-400">
          <span>{loading ? "Loading…" : `${data.current.bars.size} bars`}</span>
          <span>▲▼ signals (target position) · B/S fills</span>
          <span>Times are local.</span>
        </div>
        {!symbol && choices.data && choices.data.size === 0 && (
          <p className="text-sm text-zinc-500">No symbol yet: none held, none traded by a strategy.</p>
        )}
        <ErrorLine text={error || choices.error} />
      </Card>
    </div>
  );
}

export default function ChartPage() {
  return (
    <Suspense fallback={<p className="text-sm text-zinc-500">Loading…</p>}>
      <ChartView />
    </Suspense>
  );
}
