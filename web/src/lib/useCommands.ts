"use client";

// The control commands, newest first, kept current from `command` and `ack` events.

import { useCallback, useRef, useState } from "react";
import { apiGet, errorText } from "./api";
import { withAck } from "./killswitch";
import { useDebounced, useOnReconnect, useStreamEvents } from "./stream";
import type { AckEvent, CommandStatus, Page } from "./types";
import { useResource } from "./useResource";

export interface Commands {
  items: CommandStatus[] | undefined;
  error: string;
  nextCursor: string;
  loadMore: () => void;
  reload: () => void;
  /** A command the API just answered a POST with: shown at once, pending. */
  add: (command: CommandStatus) => void;
}

function upsert(list: CommandStatus[], command: CommandStatus): CommandStatus[] {
  const at = list.findIndex((c) => c.command_id === command.command_id);
  if (at >= 0) {
    const known = list[at];
    // A command event carries no answers: keep those already known.
    const merged =
      command.acks.length === 0 && known.acks.length > 0
        ? { ...command, acks: known.acks, status: known.status }
        : command;
    const next = list.slice();
    next[at] = merged;
    return next;
  }
  return [command, ...list].sort((a, b) => b.ts_event - a.ts_event);
}

export function useCommands(limit = 50): Commands {
  const [nextCursor, setNextCursor] = useState("");
  const [moreError, setMoreError] = useState("");
  const resource = useResource(async () => {
    const page = await apiGet<Page<CommandStatus>>("/controls/commands", { limit });
    setNextCursor(page.next_cursor);
    return page.items;
  }, [limit]);
  const { setData, reload } = resource;
  const refetch = useDebounced(reload, 500);
  const known = useRef(new Set<string>());
  known.current = new Set((resource.data ?? []).map((c) => c.command_id));

  useStreamEvents(["command", "ack"], (kind, data) => {
    if (!data || typeof data !== "object") return;
    if (kind === "command") {
      const command = data as CommandStatus;
      if (!command.command_id) return;
      setData((list) => upsert(list ?? [], { ...command, acks: command.acks ?? [] }));
    } else {
      const ack = data as AckEvent;
      if (!ack.command_id) return;
      // An answer to a command not shown yet (not on our page, or just issued): refetch too.
      if (!known.current.has(ack.command_id)) refetch();
      setData((list) =>
        list?.map((c) => (c.command_id === ack.command_id ? withAck(c, ack) : c)),
      );
    }
  });
  useOnReconnect(reload);

  const loadMore = useCallback(() => {
    if (!nextCursor) return;
    apiGet<Page<CommandStatus>>("/controls/commands", { limit, cursor: nextCursor }).then(
      (page) => {
        setData((list) => {
          const seen = new Set((list ?? []).map((c) => c.command_id));
          return [...(list ?? []), ...page.items.filter((c) => !seen.has(c.command_id))];
        });
        setNextCursor(page.next_cursor);
        setMoreError("");
      },
      (error: unknown) => setMoreError(errorText(error)),
    );
  }, [nextCursor, limit, setData]);

  const add = useCallback(
    (command: CommandStatus) => setData((list) => upsert(list ?? [], command)),
    [setData],
  );

  return {
    items: resource.data,
    error: resource.error || moreError,
    nextCursor,
    loadMore,
    reload,
    add,
  };
}
