// The API's answers, as its OpenAPI document describes them. Prices and money are decimal
// strings in price units; times are integer nanoseconds since the epoch.

export type Role = "viewer" | "trader";

export interface Me {
  user: string;
  role: Role | string;
}

export interface LoggedIn extends Me {
  csrf_token: string;
}

export interface PositionView {
  strategy: string;
  symbol: string;
  quantity: number;
  avg_price: string;
  realized_pnl: string;
  fees: string;
  ts_event: number;
  last_fill_id: string;
  instrument_id: number;
}

export interface NetPositionView {
  symbol: string;
  quantity: number;
  strategies: number;
}

export interface PnlRow {
  strategy: string;
  symbol: string;
  quantity: number;
  avg_price: string;
  mark: string | null;
  mark_ts: number | null;
  realized: string;
  unrealized: string | null;
  fees: string;
  total: string;
}

export interface PnlView {
  day: string;
  rows: PnlRow[];
  realized: string;
  unrealized: string;
  fees: string;
  total: string;
  day_realized: string;
}

export interface LegView {
  symbol: string;
  ratio: number;
}

export interface OrderView {
  client_order_id: string;
  venue_order_id: string;
  signal_id: string;
  strategy: string;
  symbol: string;
  side: string;
  quantity: number;
  filled_quantity: number;
  avg_fill_price: string | null;
  order_type: string;
  time_in_force: string;
  limit_price: string | null;
  stop_price: string | null;
  status: string;
  position_effect: string;
  reason: string;
  ts_event: number;
  legs: LegView[];
}

export interface FillView {
  fill_id: string;
  client_order_id: string;
  venue_order_id: string;
  strategy: string;
  symbol: string;
  side: string;
  quantity: number;
  price: string;
  fee: string;
  ts_event: number;
}

export interface SignalView {
  signal_id: string;
  strategy: string;
  symbol: string;
  ts_event: number;
  sequence: number;
  target_position: number;
  reference_price: string | null;
  reason: string;
  legs: LegView[];
}

export interface Page<T> {
  items: T[];
  next_cursor: string;
}

export interface BarView {
  ts_event: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: number;
  trade_count: number;
}

export interface BarsView {
  symbol: string;
  interval: string;
  bars: BarView[];
  next_since: number | null;
}

export interface IndicatorView {
  strategy: string;
  ts_event: number;
  values: Record<string, string | null>;
  directions: Record<string, number>;
}

export interface IndicatorsView {
  symbol: string;
  interval: string;
  points: IndicatorView[];
  next_since: number | null;
}

export interface ParamSpec {
  name: string;
  type: string;
  default: boolean | number | string | null;
}

export type ParamValue = boolean | number | string;

export interface StrategyView {
  strategy: string;
  symbol: string;
  enabled: boolean;
  params: Record<string, ParamValue>;
  bar_interval: string;
  last_signal: SignalView | null;
  indicators: IndicatorView | null;
}

export interface StrategiesView {
  declared: Record<string, ParamSpec[]>;
  strategies: StrategyView[];
}

export type Health = "up" | "degraded" | "silent" | "stopped";

export interface ProcessView {
  process: string;
  instance: string;
  health: Health | string;
  state: string;
  reason: string;
  lag: number | null;
  details: Record<string, string | number | boolean | null>;
  last_seen: number;
  seconds_since: number;
}

export interface DeadLetterView {
  reason: string;
  topic: string;
  partition: number;
  offset: number;
  key: string;
  size: number;
  ts_ms: number;
}

export interface DeadLetters {
  count: number;
  latest: DeadLetterView[];
}

export interface AckView {
  by: string;
  applied: boolean;
  reason: string;
  ts_event: number;
}

export interface CommandStatus {
  command_id: string;
  action: string;
  strategy: string;
  symbol: string;
  params: Record<string, ParamValue>;
  kill_switch: string | null;
  issued_by: string;
  ts_event: number;
  status: "pending" | "applied" | "refused" | string;
  acks: AckView[];
}

/** An `ack` event's data: the answer and the command it answers. */
export interface AckEvent extends AckView {
  command_id: string;
}

export type KillSwitchState = "active" | "reducing" | "halted";
export const KILL_SWITCH_STATES: KillSwitchState[] = ["active", "reducing", "halted"];

export const ORDER_STATUSES = [
  "new",
  "pending_submit",
  "submitted",
  "accepted",
  "partially_filled",
  "filled",
  "pending_cancel",
  "cancelled",
  "rejected",
  "expired",
  "unknown",
] as const;

export const BAR_INTERVALS = ["1s", "1m", "5m"] as const;
export const INTERVAL_NS: Record<string, number> = {
  "1s": 1e9,
  "1m": 60e9,
  "5m": 300e9,
};
