"use client";

import { useCallback, useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import {
  Badge,
  buttonClass,
  Card,
  Empty,
  ErrorLine,
  inputClass,
  numClass,
  primaryButtonClass,
  statusTone,
  TableWrap,
  tableClass,
  tdClass,
  thClass,
} from "@/components/ui";
import { allPages, apiGet, errorText, type Query } from "@/lib/api";
import { fmtTime, localInputToNs, money, sideClass } from "@/lib/format";
import { useDebounced, useOnReconnect, useStreamEvents } from "@/lib/stream";
import type { FillView, OrderView, Page, SignalView } from "@/lib/types";
import { ORDER_STATUSES } from "@/lib/types";

const PAGE = 100;

interface Filters {
  symbol: string;
  strategy: string;
  status: string;
  since: string; // datetime-local text
  until: string;
}

const NO_FILTERS: Filters = { symbol: "", strategy: "", status: "", since: "", until: "" };

function filtersFromUrl(): Filters {
  const q = new URLSearchParams(window.location.search);
  return {
    symbol: q.get("symbol") ?? "",
    strategy: q.get("strategy") ?? "",
    status: q.get("status") ?? "",
    since: q.get("since") ?? "",
    until: q.get("until") ?? "",
  };
}

function windowQuery(f: Filters): Query {
  return {
    symbol: f.symbol.trim(),
    strategy: f.strategy.trim(),
    since: localInputToNs(f.since),
    until: localInputToNs(f.until),
  };
}

function inWindow(f: Filters, item: { symbol: string; strategy: string; ts_event: number }): boolean {
  if (f.symbol.trim() && item.symbol !== f.symbol.trim()) return false;
  if (f.strategy.trim() && item.strategy !== f.strategy.trim()) return false;
  const since = localInputToNs(f.since);
  const until = localInputToNs(f.until);
  if (since && item.ts_event < Number(since)) return false;
  if (until && item.ts_event >= Number(until)) return false;
  return true;
}

/** Insert or replace by key, newest first. */
function upsertBy<T extends { ts_event: number }>(list: T[], item: T, key: (t: T) => string): T[] {
  const id = key(item);
  const rest = list.filter((t) => key(t) !== id);
  const at = rest.findIndex((t) => t.ts_event < item.ts_event);
  if (at < 0) return [...rest, item];
  return [...rest.slice(0, at), item, ...rest.slice(at)];
}

interface Paged<T> {
  items: T[];
  cursor: string;
  error: string;
  loading: boolean;
}

const emptyPaged = <T,>(): Paged<T> => ({ items: [], cursor: "", error: "", loading: true });

interface Detail {
  order: OrderView | null;
  signal: SignalView | null;
  signalNote: string;
  fills: FillView[];
  error: string;
  loading: boolean;
}

async function loadDetail(id: string): Promise<Omit<Detail, "loading">> {
  const order = await apiGet<OrderView>(`/orders/${encodeURIComponent(id)}`);
  let signal: SignalView | null = null;
  let signalNote = "";
  let error = "";
  if (order.signal_id) {
    try {
      // The order's ts_event is its signal's time: ask for a narrow window around it.
      const near = await apiGet<Page<SignalView>>("/signals", {
        symbol: order.symbol,
        strategy: order.strategy,
        since: Math.max(0, order.ts_event - 1e6),
        until: order.ts_event + 1e6,
        limit: 100,
      });
      signal = near.items.find((s) => s.signal_id === order.signal_id) ?? null;
      if (!signal) {
        const recent = await apiGet<Page<SignalView>>("/signals", {
          symbol: order.symbol,
          limit: 1000,
        });
        signal = recent.items.find((s) => s.signal_id === order.signal_id) ?? null;
      }
      if (!signal) signalNote = `signal ${order.signal_id} not found`;
    } catch (failure) {
      error = errorText(failure);
    }
  } else {
    signalNote = "no signal (a control order, such as a flatten)";
  }
  let fills: FillView[] = [];
  try {
    const scope = { symbol: order.symbol, strategy: order.strategy, limit: 1000 };
    const after = await allPages<FillView>("/fills", { ...scope, since: Math.max(0, order.ts_event - 1e9) }, 5);
    fills = after.items.filter((f) => f.client_order_id === order.client_order_id);
    if (fills.length === 0 && order.filled_quantity > 0) {
      const any = await allPages<FillView>("/fills", scope, 3);
      fills = any.items.filter((f) => f.client_order_id === order.client_order_id);
    }
  } catch (failure) {
    error = error || errorText(failure);
  }
  fills.sort((a, b) => a.ts_event - b.ts_event);
  return { order, signal, signalNote, fills, error };
}

function Field({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="flex justify-between gap-3 border-b border-zinc-100 py-1 text-sm dark:border-zinc-800/60">
      <dt className="text-zinc-500 dark:text-zinc-400">{label}</dt>
      <dd className="text-right font-mono break-all">{children}</dd>
    </div>
  );
}

function OrderDetail({ id, detail, onClose }: { id: string; detail: Detail; onClose: () => void }) {
  const { order, signal, fills } = detail;
  return (
    <Card
      testId="order-detail"
      title="Order life"
      actions={
        <button type="button" className={buttonClass} onClick={onClose}>
          Close
        </button>
      }
    >
      <p className="mb-2 font-mono text-xs break-all text-zinc-500 dark:text-zinc-400">{id}</p>
      {detail.loading && !order && <Empty>Loading…</Empty>}
      <ErrorLine text={detail.error} />
      {order && (
        <div className="flex flex-col gap-3">
          <section>
            <h3 className="mb-1 text-xs font-semibold uppercase text-zinc-500">1 · Signal</h3>
            {signal ? (
              <dl>
                <Field label="time">{fmtTime(signal.ts_event)}</Field>
                <Field label="target position">{signal.target_position}</Field>
                <Field label="reference price">{money(signal.reference_price)}</Field>
                <Field label="reason">{signal.reason || "—"}</Field>
                <Field label="signal id">{signal.signal_id}</Field>
              </dl>
            ) : (
              <Empty>{detail.signalNote || "—"}</Empty>
            )}
          </section>
          <section>
            <h3 className="mb-1 text-xs font-semibold uppercase text-zinc-500">2 · Order</h3>
            <dl>
              <Field label="status">
                <Badge tone={statusTone(order.status)}>{order.status}</Badge>
              </Field>
              <Field label="strategy / symbol">
                {order.strategy} / {order.symbol}
              </Field>
              <Field label="side">
                <span className={sideClass(order.side)}>{order.side}</span>
              </Field>
              <Field label="quantity">
                {order.filled_quantity} / {order.quantity} filled
              </Field>
              <Field label="type / tif">
                {order.order_type} / {order.time_in_force}
              </Field>
              {order.limit_price && <Field label="limit">{order.limit_price}</Field>}
              {order.stop_price && <Field label="stop">{order.stop_price}</Field>}
              <Field label="avg fill price">{money(order.avg_fill_price)}</Field>
              <Field label="position effect">{order.position_effect || "—"}</Field>
              <Field label="venue order id">{order.venue_order_id || "—"}</Field>
              <Field label="signal time">{fmtTime(order.ts_event)}</Field>
              {order.reason && <Field label="reason">{order.reason}</Field>}
              {order.legs.length > 0 && (
                <Field label="legs">
                  {order.legs.map((l) => `${l.ratio > 0 ? "+" : ""}${l.ratio} ${l.symbol}`).join(", ")}
                </Field>
              )}
            </dl>
          </section>
          <section>
            <h3 className="mb-1 text-xs font-semibold uppercase text-zinc-500">3 · Fills ({fills.length})</h3>
            {fills.length > 0 ? (
              <TableWrap>
                <table className={tableClass}>
                  <thead>
                    <tr>
                      <th className={thClass}>Time</th>
                      <th className={thClass}>Side</th>
                      <th className={`${thClass} ${numClass}`}>Qty</th>
                      <th className={`${thClass} ${numClass}`}>Price</th>
                      <th className={`${thClass} ${numClass}`}>Fee</th>
                    </tr>
                  </thead>
                  <tbody>
                    {fills.map((f) => (
                      <tr key={f.fill_id} data-testid="order-fill-row">
                        <td className={tdClass}>{fmtTime(f.ts_event)}</td>
                        <td className={`${tdClass} ${sideClass(f.side)}`}>{f.side}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.quantity}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.price}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.fee}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : (
              <Empty>No fills.</Empty>
            )}
          </section>
        </div>
      )}
    </Card>
  );
}

export default function BlotterPage() {
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [filters, setFilters] = useState<Filters | null>(null);
  const [orders, setOrders] = useState<Paged<OrderView>>(emptyPaged);
  const [fills, setFills] = useState<Paged<FillView>>(emptyPaged);
  const [selected, setSelected] = useState<string | null>(null);
  const [detail, setDetail] = useState<Detail | null>(null);
  const generation = useRef(0);

  useEffect(() => {
    const initial = filtersFromUrl();
    setDraft(initial);
    setFilters(initial);
  }, []);

  const load = useCallback((f: Filters) => {
    const gen = ++generation.current;
    const base = windowQuery(f);
    setOrders((o) => ({ ...o, loading: true }));
    setFills((o) => ({ ...o, loading: true }));
    apiGet<Page<OrderView>>("/orders", { ...base, status: f.status, limit: PAGE }).then(
      (page) => gen === generation.current && setOrders({ items: page.items, cursor: page.next_cursor, error: "", loading: false }),
      (e: unknown) => gen === generation.current && setOrders((o) => ({ ...o, error: errorText(e), loading: false })),
    );
    apiGet<Page<FillView>>("/fills", { ...base, limit: PAGE }).then(
      (page) => gen === generation.current && setFills({ items: page.items, cursor: page.next_cursor, error: "", loading: false }),
      (e: unknown) => gen === generation.current && setFills((o) => ({ ...o, error: errorText(e), loading: false })),
    );
  }, []);

  useEffect(() => {
    if (filters) load(filters);
  }, [filters, load]);

  const moreOrders = () => {
    if (!filters || !orders.cursor) return;
    const gen = generation.current;
    apiGet<Page<OrderView>>("/orders", { ...windowQuery(filters), status: filters.status, limit: PAGE, cursor: orders.cursor }).then(
      (page) => {
        if (gen !== generation.current) return;
        setOrders((o) => {
          const seen = new Set(o.items.map((x) => x.client_order_id));
          return { items: [...o.items, ...page.items.filter((x) => !seen.has(x.client_order_id))], cursor: page.next_cursor, error: "", loading: false };
        });
      },
      (e: unknown) => setOrders((o) => ({ ...o, error: errorText(e) })),
    );
  };

  const moreFills = () => {
    if (!filters || !fills.cursor) return;
    const gen = generation.current;
    apiGet<Page<FillView>>("/fills", { ...windowQuery(filters), limit: PAGE, cursor: fills.cursor }).then(
      (page) => {
        if (gen !== generation.current) return;
        setFills((o) => {
          const seen = new Set(o.items.map((x) => x.fill_id));
          return { items: [...o.items, ...page.items.filter((x) => !seen.has(x.fill_id))], cursor: page.next_cursor, error: "", loading: false };
        });
      },
      (e: unknown) => setFills((o) => ({ ...o, error: errorText(e) })),
    );
  };

  // The order detail: loaded on selection, again when its order or fills change.
  const detailGen = useRef(0);
  const reloadDetail = useCallback((id: string) => {
    const gen = ++detailGen.current;
    setDetail((d) => ({ ...(d ?? { order: null, signal: null, signalNote: "", fills: [], error: "" }), loading: true }));
    loadDetail(id).then(
      (answer) => gen === detailGen.current && setDetail({ ...answer, loading: false }),
      (e: unknown) =>
        gen === detailGen.current &&
        setDetail({ order: null, signal: null, signalNote: "", fills: [], error: errorText(e), loading: false }),
    );
  }, []);
  useEffect(() => {
    setDetail(null);
    if (selected) reloadDetail(selected);
  }, [selected, reloadDetail]);
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const refreshDetail = useDebounced(() => {
    if (selectedRef.current) reloadDetail(selectedRef.current);
  }, 250);

  useStreamEvents(["order", "fill"], (kind, data) => {
    if (!filters || !data || typeof data !== "object") return;
    if (kind === "order") {
      const order = data as OrderView;
      if (!order.client_order_id) return;
      const fits = inWindow(filters, order) && (!filters.status || order.status === filters.status);
      setOrders((o) => {
        if (fits) return { ...o, items: upsertBy(o.items, order, (x) => x.client_order_id) };
        return { ...o, items: o.items.filter((x) => x.client_order_id !== order.client_order_id) };
      });
      if (order.client_order_id === selectedRef.current) refreshDetail();
    } else {
      const fill = data as FillView;
      if (!fill.fill_id) return;
      if (inWindow(filters, fill)) {
        setFills((o) => ({ ...o, items: upsertBy(o.items, fill, (x) => x.fill_id) }));
      }
      if (fill.client_order_id === selectedRef.current) refreshDetail();
    }
  });
  useOnReconnect(() => {
    if (filters) load(filters);
    if (selectedRef.current) reloadDetail(selectedRef.current);
  });

  const apply = (event: FormEvent) => {
    event.preventDefault();
    const next = { ...draft };
    setFilters(next);
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v) q.set(k, v);
    const search = q.toString();
    window.history.replaceState(null, "", search ? `?${search}` : window.location.pathname);
  };
  const clear = () => {
    setDraft(NO_FILTERS);
    setFilters({ ...NO_FILTERS });
    window.history.replaceState(null, "", window.location.pathname);
  };

  const set = (key: keyof Filters) => (e: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [key]: e.target.value }));

  return (
    <div className="flex flex-col gap-4">
      <Card title="Filters">
        <form onSubmit={apply} className="grid grid-cols-2 gap-2 sm:grid-cols-3 lg:grid-cols-6 lg:items-end">
          <label className="flex flex-col gap-1 text-xs">
            Symbol
            <input data-testid="filter-symbol" className={inputClass} value={draft.symbol} onChange={set("symbol")} placeholder="any" autoCapitalize="characters" />
          </label>
          <label className="flex flex-col gap-1 text-xs">
            Strategy
            <input data-testid="filter-strategy" className={inputClass} value={draft.strategy} onChange={set("strategy")} placeholder="any" autoCapitalize="none" />
          </label>
          <label className="flex flex-col gap-1 text-xs">
            Order status
            <select data-testid="filter-status" className={inputClass} value={draft.status} onChange={set("status")}>
              <option value="">any</option>
              {ORDER_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label className="flex flex-col gap-1 text-xs">
            Since (local)
            <input data-testid="filter-since" type="datetime-local" step="1" className={inputClass} value={draft.since} onChange={set("since")} />
          </label>
          <label className="flex flex-col gap-1 text-xs">
            Until (local)
            <input data-testid="filter-until" type="datetime-local" step="1" className={inputClass} value={draft.until} onChange={set("until")} />
          </label>
          <div className="col-span-2 flex gap-2 sm:col-span-1">
            <button data-testid="filter-apply" type="submit" className={primaryButtonClass}>
              Apply
            </button>
            <button type="button" className={buttonClass} onClick={clear}>
              Clear
            </button>
          </div>
        </form>
      </Card>

      <div className="grid gap-4 lg:grid-cols-3">
        {selected && (
          <div className="order-first min-w-0 lg:order-last lg:col-span-1">
            <div className="lg:sticky lg:top-16">
              <OrderDetail
                id={selected}
                detail={detail ?? { order: null, signal: null, signalNote: "", fills: [], error: "", loading: true }}
                onClose={() => setSelected(null)}
              />
            </div>
          </div>
        )}
        <div className={`flex min-w-0 flex-col gap-4 ${selected ? "lg:col-span-2" : "lg:col-span-3"}`}>
          <Card title={`Orders (${orders.items.length}${orders.cursor ? "+" : ""})`}>
            {orders.items.length > 0 ? (
              <TableWrap>
                <table className={tableClass}>
                  <thead>
                    <tr>
                      <th className={thClass}>Time</th>
                      <th className={thClass}>Strategy</th>
                      <th className={thClass}>Symbol</th>
                      <th className={thClass}>Side</th>
                      <th className={`${thClass} ${numClass}`}>Qty</th>
                      <th className={`${thClass} ${numClass}`}>Filled</th>
                      <th className={thClass}>Type</th>
                      <th className={`${thClass} ${numClass}`}>Avg fill</th>
                      <th className={thClass}>Status</th>
                      <th className={thClass}>Reason</th>
                    </tr>
                  </thead>
                  <tbody>
                    {orders.items.map((o) => (
                      <tr
                        key={o.client_order_id}
                        data-testid="order-row"
                        data-order-id={o.client_order_id}
                        data-status={o.status}
                        tabIndex={0}
                        aria-selected={selected === o.client_order_id}
                        onClick={() => setSelected(o.client_order_id)}
                        onKeyDown={(e) => {
                          if (e.key === "Enter" || e.key === " ") {
                            e.preventDefault();
                            setSelected(o.client_order_id);
                          }
                        }}
                        className={`cursor-pointer hover:bg-zinc-50 dark:hover:bg-zinc-800/60 ${selected === o.client_order_id ? "bg-sky-50 dark:bg-sky-950/40" : ""}`}
                      >
                        <td className={`${tdClass} whitespace-nowrap`}>{fmtTime(o.ts_event)}</td>
                        <td className={tdClass}>{o.strategy}</td>
                        <td className={`${tdClass} font-medium`}>{o.symbol}</td>
                        <td className={`${tdClass} ${sideClass(o.side)}`}>{o.side}</td>
                        <td className={`${tdClass} ${numClass}`}>{o.quantity}</td>
                        <td className={`${tdClass} ${numClass}`}>{o.filled_quantity}</td>
                        <td className={tdClass}>
                          {o.order_type}
                          {o.limit_price ? ` @ ${o.limit_price}` : ""}
                        </td>
                        <td className={`${tdClass} ${numClass}`}>{money(o.avg_fill_price)}</td>
                        <td className={tdClass}>
                          <Badge tone={statusTone(o.status)}>{o.status}</Badge>
                        </td>
                        <td className={`${tdClass} max-w-64 truncate`} title={o.reason}>
                          {o.reason}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : (
              !orders.error && <Empty>{orders.loading ? "Loading…" : "No orders."}</Empty>
            )}
            <ErrorLine text={orders.error} />
            {orders.cursor && (
              <button data-testid="orders-more" type="button" className={`${buttonClass} mt-2`} onClick={moreOrders}>
                Load more orders
              </button>
            )}
          </Card>

          <Card title={`Fills (${fills.items.length}${fills.cursor ? "+" : ""})`}>
            {fills.items.length > 0 ? (
              <TableWrap>
                <table className={tableClass}>
                  <thead>
                    <tr>
                      <th className={thClass}>Time</th>
                      <th className={thClass}>Strategy</th>
                      <th className={thClass}>Symbol</th>
                      <th className={thClass}>Side</th>
                      <th className={`${thClass} ${numClass}`}>Qty</th>
                      <th className={`${thClass} ${numClass}`}>Price</th>
                      <th className={`${thClass} ${numClass}`}>Fee</th>
                      <th className={thClass}>Order</th>
                    </tr>
                  </thead>
                  <tbody>
                    {fills.items.map((f) => (
                      <tr key={f.fill_id} data-testid="fill-row" data-fill-id={f.fill_id} data-order-id={f.client_order_id}>
                        <td className={`${tdClass} whitespace-nowrap`}>{fmtTime(f.ts_event)}</td>
                        <td className={tdClass}>{f.strategy}</td>
                        <td className={`${tdClass} font-medium`}>{f.symbol}</td>
                        <td className={`${tdClass} ${sideClass(f.side)}`}>{f.side}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.quantity}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.price}</td>
                        <td className={`${tdClass} ${numClass}`}>{f.fee}</td>
                        <td className={tdClass}>
                          <button
                            type="button"
                            className="max-w-40 truncate font-mono text-xs text-sky-700 hover:underline dark:text-sky-400"
                            title={f.client_order_id}
                            onClick={() => setSelected(f.client_order_id)}
                          >
                            {f.client_order_id}
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            ) : (
              !fills.error && <Empty>{fills.loading ? "Loading…" : "No fills."}</Empty>
            )}
            <ErrorLine text={fills.error} />
            {fills.cursor && (
              <button data-testid="fills-more" type="button" className={`${buttonClass} mt-2`} onClick={moreFills}>
                Load more fills
              </button>
            )}
          </Card>
        </div>
      </div>
    </div>
  );
}
