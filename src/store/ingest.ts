// Events -> SQLite. The IPC stream and a re-read of events.jsonl go through the same
// function, `ingestLines`; UNIQUE(run_key, seq) + ON CONFLICT DO NOTHING makes a second
// ingest of the same event a no-op, and derived rows are written only for new events.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Store } from "./db.js";
import { EventFormatError, parseEvent, type RunEvent, type Scalar } from "./events.js";

export interface IngestResult {
  inserted: number;
  duplicates: number;
  /** Lines that are not valid events, with the reason (never ingested). */
  invalid: { line: string; reason: string }[];
  /** The "started" events recorded by this ingest (not those already there). */
  started: Extract<RunEvent, { type: "started" }>[];
}

function split(value: Scalar): { value: number | null; nonfinite: string | null } {
  return typeof value === "number" ? { value, nonfinite: null } : { value: null, nonfinite: value };
}

function statements(db: Store) {
  return {
    event: db.prepare(`INSERT INTO events (run_key, seq, t, type, step, updates, body)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_key, seq) DO NOTHING`),
    metric: db.prepare(`INSERT INTO metrics (run_key, seq, step, updates, name, value, nonfinite)
      VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
    evalRow: db.prepare(`INSERT INTO evals (run_key, seq, step, split, policy, task, episode, trials, return,
      return_nonfinite, success, score) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
    progress: db.prepare(`UPDATE runs SET step = MAX(step, ?), updates = MAX(updates, ?),
      heartbeat_at = MAX(COALESCE(heartbeat_at, 0), ?) WHERE key = ?`),
    // A worker in a GPU slot sees its one GPU as cuda:0: the slot's label (the GPU as this
    // machine numbers it, written when the worker started) is kept over it.
    started: db.prepare(`UPDATE runs SET config = @config, versions = @versions,
      device = CASE WHEN device LIKE 'cuda%' AND @device LIKE 'cuda%' THEN device ELSE @device END,
      total_steps = @totalSteps, started_at = COALESCE(started_at, @t) WHERE key = @key`),
    finished: db.prepare("UPDATE runs SET summary = ? WHERE key = ?"),
    error: db.prepare("UPDATE runs SET error_type = ?, error_message = ?, error_traceback = ? WHERE key = ?"),
  };
}

function applyEvent(s: ReturnType<typeof statements>, key: string, ev: RunEvent, line: string): boolean {
  const res = s.event.run(key, ev.seq, ev.t, ev.type, ev.step, ev.update, line);
  if (res.changes === 0) return false;
  s.progress.run(ev.step, ev.update, ev.t, key);
  switch (ev.type) {
    case "started":
      s.started.run({ config: JSON.stringify(ev.config), versions: JSON.stringify({ node: process.version, ...ev.versions }),
        device: ev.device, totalSteps: ev.total_steps, t: ev.t, key });
      break;
    case "metrics":
      for (const [name, value] of Object.entries(ev.metrics)) {
        const v = split(value);
        s.metric.run(key, ev.seq, ev.step, ev.update, name, v.value, v.nonfinite);
      }
      break;
    case "eval":
      for (const [task, entry] of Object.entries(ev.tasks)) {
        entry.return.forEach((ret, episode) => {
          const r = split(ret);
          s.evalRow.run(key, ev.seq, ev.step, ev.split, ev.policy, task, episode, entry.trials, r.value, r.nonfinite,
            entry.success?.[episode] ?? null, entry.score?.[episode] ?? null);
        });
      }
      break;
    case "finished":
      s.finished.run(JSON.stringify(ev.summary), key);
      break;
    case "error":
      s.error.run(ev.error_type, ev.message, ev.traceback, key);
      break;
    case "checkpoint":
    case "heartbeat":
      break;
  }
  return true;
}

/** Ingest raw journal lines of one run in one synchronous transaction. */
export function ingestLines(db: Store, key: string, lines: readonly string[]): IngestResult {
  const s = statements(db);
  const result: IngestResult = { inserted: 0, duplicates: 0, invalid: [], started: [] };
  db.transaction(() => {
    for (const line of lines) {
      if (line.trim() === "") continue;
      let ev: RunEvent;
      try {
        ev = parseEvent(line);
      } catch (err) {
        if (!(err instanceof EventFormatError)) throw err;
        result.invalid.push({ line, reason: err.message });
        continue;
      }
      if (!applyEvent(s, key, ev, line)) {
        result.duplicates++;
        continue;
      }
      result.inserted++;
      if (ev.type === "started") result.started.push(ev);
    }
  })();
  return result;
}

/**
 * Make the journal hold every event the DB holds, before a run resumes: a journal cut short
 * (by a crash, a full disk, a restored backup) gets its missing tail back from the events'
 * stored lines, after its torn last line (if any) is cut off. Python numbers a resumed
 * run's events after the journal's last line, so without this the new events would take
 * numbers the DB already has and be dropped as duplicates. Written to a temporary file and
 * renamed over the journal. Returns how many events were restored.
 */
export function restoreJournal(db: Store, key: string, runDir: string): number {
  const file = path.join(runDir, "events.jsonl");
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const complete = text.slice(0, text.lastIndexOf("\n") + 1);
  let last = -1;
  for (const line of complete.split("\n").reverse()) {
    if (line.trim() === "") continue;
    try {
      last = parseEvent(line).seq;
      break;
    } catch {
      // an unreadable complete line: look further back, as Python does
    }
  }
  const missing = db.prepare("SELECT body FROM events WHERE run_key = ? AND seq > ? ORDER BY seq").all(key, last) as { body: string }[];
  if (missing.length === 0) return 0;
  mkdirSync(runDir, { recursive: true });
  const tmp = path.join(runDir, ".tmp-events.jsonl");
  writeFileSync(tmp, complete + missing.map((m) => `${m.body}\n`).join(""));
  renameSync(tmp, file);
  return missing.length;
}

/**
 * Re-read `<runDir>/events.jsonl` into the DB. A torn last line (the writer was killed
 * mid-write) is not an error: Python drops it on resume too.
 */
export function ingestJournal(db: Store, key: string, runDir: string): IngestResult {
  const file = path.join(runDir, "events.jsonl");
  if (!existsSync(file)) return { inserted: 0, duplicates: 0, invalid: [], started: [] };
  const text = readFileSync(file, "utf8");
  const lines = text.split("\n");
  if (!text.endsWith("\n")) lines.pop();
  return ingestLines(db, key, lines);
}
