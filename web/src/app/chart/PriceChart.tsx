"use client";

// Candles, the strategies' indicator lines on the price pane, and signals and fills as
// markers at the bar that holds their time. lightweight-charts (Apache-2.0) draws it, with
// its attribution logo left on as its licence asks.

import {
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  LineSeries,
  type CandlestickData,
  type IChartApi,
  type ISeriesApi,
  type ISeriesMarkersPluginApi,
  type LineData,
  type SeriesMarker,
  type Time,
  type UTCTimestamp,
} from "lightweight-charts";
import { useEffect, useRef, useState } from "react";
import type { BarView, FillView, IndicatorView, SignalView } from "@/lib/types";

export interface ChartData {
  /** By open time (ns). */
  bars: Map<number, BarView>;
  /** By strategy and bar open time. */
  indicators: Map<string, IndicatorView>;
  signals: Map<string, SignalView>;
  fills: Map<string, FillView>;
  version: number;
}

const PALETTE = ["#2563eb", "#f59e0b", "#a855f7", "#0d9488", "#db2777", "#65a30d", "#0891b2", "#ea580c"];
const UP = "#16a34a";
const DOWN = "#dc2626";

const toSeconds = (ns: number) => Math.floor(ns / 1e9) as UTCTimestamp;
const pad = (n: number) => String(n).padStart(2, "0");

function localLabel(time: Time, withDate: boolean, withSeconds: boolean): string {
  if (typeof time !== "number") return String(time);
  const d = new Date(time * 1000);
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}${withSeconds ? `:${pad(d.getSeconds())}` : ""}`;
  return withDate ? `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}` : clock;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** Tick labels in local time: year, month, day, then the clock (0..4 as TickMarkType). */
function tickLabel(time: Time, kind: number): string {
  if (typeof time !== "number") return String(time);
  const d = new Date(time * 1000);
  if (kind === 0) return String(d.getFullYear());
  if (kind === 1) return MONTHS[d.getMonth()];
  if (kind === 2) return `${MONTHS[d.getMonth()]} ${d.getDate()}`;
  return localLabel(time, false, kind >= 4);
}

function decimals(text: string): number {
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}

function theme(dark: boolean) {
  return {
    layout: {
      background: { type: ColorType.Solid, color: dark ? "#18181b" : "#ffffff" },
      textColor: dark ? "#d4d4d8" : "#3f3f46",
    },
    grid: {
      vertLines: { color: dark ? "#27272a" : "#f4f4f5" },
      horzLines: { color: dark ? "#27272a" : "#f4f4f5" },
    },
    rightPriceScale: { borderColor: dark ? "#3f3f46" : "#e4e4e7" },
    timeScale: { borderColor: dark ? "#3f3f46" : "#e4e4e7" },
  };
}

/** What a series last drew, to append rather than redraw. */
interface Drawn {
  count: number;
  last: number;
}

/** Draw `points` (sorted by time) on `series`: only what is new when it extends what was
 * drawn, everything otherwise. */
function sync<T extends { time: Time }>(
  series: ISeriesApi<"Candlestick"> | ISeriesApi<"Line">,
  points: T[],
  drawn: Drawn | undefined,
): Drawn {
  const lastTime = points.length ? (points[points.length - 1].time as number) : -1;
  const extends_ =
    drawn &&
    drawn.count > 0 &&
    points.length >= drawn.count &&
    (points[drawn.count - 1].time as number) === drawn.last;
  if (extends_) {
    for (let i = drawn.count - 1; i < points.length; i++) {
      (series as ISeriesApi<"Line">).update(points[i] as unknown as LineData);
    }
  } else {
    (series as ISeriesApi<"Line">).setData(points as unknown as LineData[]);
  }
  return { count: points.length, last: lastTime };
}

interface Stats {
  bars: number;
  markers: number;
  /** The bar times (UTC seconds) carrying a signal marker, for tests and people alike. */
  signalTimes: number[];
  indicators: string[];
  colours: Record<string, string>;
  /** Lines coloured by their trend direction (Supertrend). */
  directional: string[];
}

export function PriceChart({
  data,
  version,
  intervalNs,
}: {
  data: ChartData;
  version: number;
  intervalNs: number;
}) {
  const host = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const candles = useRef<ISeriesApi<"Candlestick"> | null>(null);
  const markers = useRef<ISeriesMarkersPluginApi<Time> | null>(null);
  const lines = useRef(new Map<string, ISeriesApi<"Line">>());
  const drawn = useRef(new Map<string, Drawn>());
  const drawnFor = useRef<ChartData | null>(null);
  const precision = useRef<number | null>(null);
  const colours = useRef(new Map<string, string>());
  const [stats, setStats] = useState<Stats>({
    bars: 0,
    markers: 0,
    signalTimes: [],
    indicators: [],
    colours: {},
    directional: [],
  });

  // The chart itself, once.
  useEffect(() => {
    if (!host.current) return;
    const media = window.matchMedia("(prefers-color-scheme: dark)");
    const api = createChart(host.current, {
      autoSize: true,
      ...theme(media.matches),
      crosshair: { mode: 0 },
      localization: { timeFormatter: (t: Time) => localLabel(t, true, true) },
      timeScale: {
        timeVisible: true,
        secondsVisible: true,
        tickMarkFormatter: tickLabel,
      },
    });
    chart.current = api;
    candles.current = api.addSeries(CandlestickSeries, {
      upColor: UP,
      downColor: DOWN,
      borderUpColor: UP,
      borderDownColor: DOWN,
      wickUpColor: UP,
      wickDownColor: DOWN,
    });
    markers.current = createSeriesMarkers(candles.current, []);
    const onScheme = () => api.applyOptions(theme(media.matches));
    media.addEventListener("change", onScheme);
    const seriesMap = lines.current;
    const drawnMap = drawn.current;
    return () => {
      media.removeEventListener("change", onScheme);
      api.remove();
      chart.current = null;
      candles.current = null;
      markers.current = null;
      seriesMap.clear();
      drawnMap.clear();
      drawnFor.current = null;
    };
  }, []);

  // Draw what the data holds now.
  useEffect(() => {
    const api = chart.current;
    const candleSeries = candles.current;
    if (!api || !candleSeries) return;

    if (drawnFor.current !== data) {
      // A new symbol or interval: start over.
      for (const series of lines.current.values()) api.removeSeries(series);
      lines.current.clear();
      colours.current.clear();
      drawn.current.clear();
      precision.current = null;
      drawnFor.current = data;
    }

    const bars = [...data.bars.values()].sort((a, b) => a.ts_event - b.ts_event);
    if (precision.current === null && bars.length > 0) {
      let places = 0;
      for (const b of bars.slice(0, 200)) {
        places = Math.max(places, decimals(b.open), decimals(b.high), decimals(b.low), decimals(b.close));
      }
      places = Math.min(places, 8);
      precision.current = places;
      candleSeries.applyOptions({
        priceFormat: { type: "price", precision: places, minMove: 1 / 10 ** places },
      });
    }
    const candleData: CandlestickData<Time>[] = bars.map((b) => ({
      time: toSeconds(b.ts_event),
      open: Number(b.open),
      high: Number(b.high),
      low: Number(b.low),
      close: Number(b.close),
    }));
    drawn.current.set("\u0000candles", sync(candleSeries, candleData, drawn.current.get("\u0000candles")));

    // Indicator lines: one per name (strategy-qualified where two strategies share one).
    const points = [...data.indicators.values()].sort((a, b) => a.ts_event - b.ts_event);
    const owners = new Map<string, Set<string>>();
    for (const p of points) {
      for (const name of Object.keys(p.values)) {
        if (!owners.has(name)) owners.set(name, new Set());
        owners.get(name)!.add(p.strategy);
      }
    }
    const lineData = new Map<string, LineData<Time>[]>();
    const directional = new Set<string>();
    for (const p of points) {
      for (const [name, value] of Object.entries(p.values)) {
        if (value === null || value === undefined || value === "") continue;
        const number = Number(value);
        if (!Number.isFinite(number)) continue;
        const key = (owners.get(name)?.size ?? 0) > 1 ? `${p.strategy}:${name}` : name;
        const direction = p.directions?.[name];
        const point: LineData<Time> = { time: toSeconds(p.ts_event), value: number };
        if (direction === 1) point.color = UP;
        else if (direction === -1) point.color = DOWN;
        if (direction === 1 || direction === -1) directional.add(key);
        if (!lineData.has(key)) lineData.set(key, []);
        lineData.get(key)!.push(point);
      }
    }
    const names = [...lineData.keys()].sort();
    for (const key of names) {
      let series = lines.current.get(key);
      if (!series) {
        const colour = PALETTE[lines.current.size % PALETTE.length];
        colours.current.set(key, colour);
        series = api.addSeries(LineSeries, {
          color: colour,
          lineWidth: 2,
          title: key,
          priceLineVisible: false,
          lastValueVisible: false,
          crosshairMarkerVisible: false,
          ...(precision.current !== null
            ? { priceFormat: { type: "price" as const, precision: precision.current, minMove: 1 / 10 ** precision.current } }
            : {}),
        });
        lines.current.set(key, series);
      }
      drawn.current.set(key, sync(series, lineData.get(key)!, drawn.current.get(key)));
    }

    // Markers at the bar holding each signal's and fill's time, within the bars drawn.
    const first = bars.length ? bars[0].ts_event : Infinity;
    const last = bars.length ? bars[bars.length - 1].ts_event + intervalNs : -Infinity;
    const barTime = (ns: number) => toSeconds(Math.floor(ns / intervalNs) * intervalNs);
    const list: SeriesMarker<Time>[] = [];
    for (const s of data.signals.values()) {
      if (s.ts_event < first || s.ts_event >= last) continue;
      const up = s.target_position > 0;
      const flat = s.target_position === 0;
      list.push({
        // A signal's time is the close of the bar it was made on (exclusive): that bar.
        time: barTime(s.ts_event - 1),
        position: flat ? "inBar" : up ? "belowBar" : "aboveBar",
        shape: flat ? "circle" : up ? "arrowUp" : "arrowDown",
        color: flat ? "#71717a" : up ? UP : DOWN,
        text: `${s.target_position > 0 ? "+" : ""}${s.target_position}`,
        id: `signal:${s.signal_id}`,
      });
    }
    for (const f of data.fills.values()) {
      if (f.ts_event < first || f.ts_event >= last) continue;
      const buy = f.side.toLowerCase().startsWith("buy");
      list.push({
        time: barTime(f.ts_event),
        position: buy ? "belowBar" : "aboveBar",
        shape: "square",
        color: buy ? "#2563eb" : "#ea580c",
        text: `${buy ? "B" : "S"}${f.quantity}@${f.price}`,
        id: `fill:${f.fill_id}`,
      });
    }
    list.sort((a, b) => (a.time as number) - (b.time as number));
    markers.current?.setMarkers(list);

    if (bars.length > 0 && (drawn.current.get("\u0000fitted")?.count ?? 0) === 0) {
      // The latest bars, not all of them squeezed in.
      const shown = Math.min(bars.length, 240);
      api.timeScale().setVisibleLogicalRange({ from: bars.length - shown - 0.5, to: bars.length + 4 });
      drawn.current.set("\u0000fitted", { count: 1, last: 0 });
    }
    setStats({
      bars: candleData.length,
      markers: list.length,
      signalTimes: list
        .filter((m) => String(m.id ?? "").startsWith("signal:"))
        .map((m) => m.time as number),
      indicators: names,
      colours: Object.fromEntries(colours.current),
      directional: [...directional],
    });
  }, [data, version, intervalNs]);

  return (
    <div
      data-testid="chart"
      data-bars={stats.bars}
      data-markers={stats.markers}
      data-signal-times={stats.signalTimes.join(",")}
      data-indicators={stats.indicators.join(",")}
      className="relative"
    >
      <div ref={host} className="h-[55vh] min-h-72 w-full sm:min-h-96" />
      {stats.indicators.length > 0 && (
        <ul className="mt-2 flex flex-wrap gap-3 text-xs">
          {stats.indicators.map((name) => (
            <li key={name} className="flex items-center gap-1">
              <span
                className="inline-block h-0.5 w-4"
                style={
                  stats.directional.includes(name)
                    ? { background: `linear-gradient(to right, ${UP} 50%, ${DOWN} 50%)` }
                    : { backgroundColor: stats.colours[name] }
                }
              />
              {name}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
