// The global kill switch as best known: the executor's own status (`details.kill_switch`)
// or, when newer, the last global kill-switch command the executor applied.

import type { CommandStatus, KillSwitchState, ProcessView } from "./types";
import { KILL_SWITCH_STATES } from "./types";

export interface KillSwitchView {
  state: KillSwitchState;
  /** Where `state` comes from: "executor", "command" or "default". */
  source: "executor" | "command" | "default";
  /** A newer global command not yet answered. */
  pending: KillSwitchState | null;
}

const isState = (value: unknown): value is KillSwitchState =>
  typeof value === "string" && (KILL_SWITCH_STATES as string[]).includes(value);

export const isGlobal = (c: CommandStatus) => !c.strategy && !c.symbol;

export function globalKillSwitch(
  processes: ProcessView[] | undefined,
  commands: CommandStatus[] | undefined,
): KillSwitchView {
  let execState: KillSwitchState | null = null;
  let execSeen = -Infinity;
  for (const p of processes ?? []) {
    if (p.process !== "executor") continue;
    const value = p.details?.kill_switch;
    if (isState(value) && p.last_seen > execSeen) {
      execState = value;
      execSeen = p.last_seen;
    }
  }

  let cmdState: KillSwitchState | null = null;
  let cmdTime = -Infinity;
  let pending: KillSwitchState | null = null;
  let pendingTime = -Infinity;
  for (const c of commands ?? []) {
    if (c.action !== "kill_switch" || !isGlobal(c) || !isState(c.kill_switch)) continue;
    if (c.status === "applied") {
      const answered = Math.max(c.ts_event, ...c.acks.map((a) => a.ts_event));
      if (answered > cmdTime) {
        cmdTime = answered;
        cmdState = c.kill_switch;
      }
    } else if (c.status === "pending" && c.ts_event > pendingTime) {
      pendingTime = c.ts_event;
      pending = c.kill_switch;
    }
  }

  let view: KillSwitchView;
  if (cmdState !== null && (execState === null || cmdTime > execSeen)) {
    view = { state: cmdState, source: "command", pending: null };
  } else if (execState !== null) {
    view = { state: execState, source: "executor", pending: null };
  } else {
    view = { state: "active", source: "default", pending: null };
  }
  if (pending !== null && pendingTime > Math.max(cmdTime, -Infinity) && pending !== view.state) {
    view.pending = pending;
  }
  return view;
}

/** A command with an answer added, its status as the API computes it. */
export function withAck(
  command: CommandStatus,
  ack: { by: string; applied: boolean; reason: string; ts_event: number },
): CommandStatus {
  const acks = command.acks.filter((a) => a.by !== ack.by);
  acks.push({ by: ack.by, applied: ack.applied, reason: ack.reason, ts_event: ack.ts_event });
  const status = acks.every((a) => a.applied) ? "applied" : "refused";
  return { ...command, acks, status };
}
