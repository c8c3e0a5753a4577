// Sync with the server (PROTOCOL.md §4-6b), the order of client_sdk/_sync.py: photos first
// (the server holds every photo before the record that names it), then the outbox in
// change sets, one on the wire at a time, each frozen before its first attempt and resent
// byte for byte until answered; then pull until caught up. Retries as client_sdk/_http.py:
// network errors, 429 and 5xx are retried with backoff, honouring Retry-After; any other
// 4xx is the request's own fault. 401: the device was revoked. 410: the server was
// restored from a backup: pull afresh, keep the outbox, send back what the backup lacks.

import { requeue, waiting } from "./restore.js";

export const APP_NAME = "patrol-app";
export const APP_VERSION = "1.0.0";
const CHUNK = 256 * 1024;  // photo upload chunk: a cut link loses at most this much
const MAX_CHANGES = 500, MAX_BYTES = 2 * 1024 * 1024, PAGE = 1000, LONG_POLL_S = 25;
const GZIP_FROM = 1024;  // bytes of push body from which it is sent gzipped
const SCOPE_TTL_MS = 6 * 3600 * 1000;  // the user's teams and wards may change: asked again a few times a day

export class RevokedError extends Error {}
export class ServerReset extends Error {}
export class OfflineError extends Error {}
export class ProblemError extends Error {
  constructor(status, problem) { super(problem.detail || problem.title || `HTTP ${status}`); this.status = status; this.problem = problem; }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal?.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
});

function retryAfter(response, attempt) {
  const header = response?.headers.get("Retry-After");
  const seconds = header && /^\d+$/.test(header) ? Number(header) : Number.NaN;
  const backoff = Math.min(30, 0.5 * 2 ** attempt) * (0.5 + Math.random() / 2);
  return 1000 * Math.min(60, Number.isNaN(seconds) ? backoff : seconds);
}

export class Syncer {
  constructor(local, schema, { base = "", onChange = () => {}, attempts = 6 } = {}) {
    this.local = local;
    this.schema = schema;
    this.base = base;
    this.onChange = onChange;
    this.attempts = attempts;
    this.running = null;
    this.features = null;
    this.polling = null;
    this.pollStep = null;
    this.idlePauseMs = 5000;
  }

  headers(extra = {}) {
    const m = this.local.meta;
    // clock: this phone's wall clock as a stamp, for the fleet's clock-offset column (§6d)
    const clock = `${String(Date.now()).padStart(13, "0")}-0000-${m.device_id}`;
    return { Authorization: `Bearer ${m.token}`, "X-Client": `${APP_NAME}/${APP_VERSION}; schema=1; pending=${this.pendingHint ?? 0}; clock=${clock}`, ...extra };
  }

  /** One request, retried when that is safe; answers the Response of a 2xx (or `ok` codes). */
  async send(method, path, { body, headers = {}, ok = [], signal, attempts = this.attempts } = {}) {
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        response = await fetch(this.base + path, { method, body, headers: this.headers(headers), signal, cache: "no-store" });
      } catch (error) {
        if (signal?.aborted) throw error;
        if (attempt + 1 >= attempts || !navigator.onLine) throw new OfflineError("Không có kết nối mạng");
        await sleep(retryAfter(null, attempt), signal);
        continue;
      }
      if (response.ok || ok.includes(response.status)) return response;
      if (response.status === 401) {
        await this.local.setMeta({ revoked: true });
        throw new RevokedError("Thiết bị bị thu hồi: mã truy cập không còn hiệu lực. Hãy liên hệ quản trị để cấp lại.");
      }
      if (response.status === 410) throw new ServerReset("server restored");
      if ((response.status === 429 || response.status >= 500) && attempt + 1 < attempts) {
        await sleep(retryAfter(response, attempt), signal);
        continue;
      }
      let problem = {};
      try { problem = await response.json(); } catch { /* not a problem document */ }
      throw new ProblemError(response.status, problem);
    }
  }

  /** What this server supports, from its OpenAPI document (long polls, enrolment). */
  async detect() {
    if (this.features) return this.features;
    try {
      const doc = await (await fetch(`${this.base}/schema/openapi.json`, { cache: "no-store" })).json();
      const pull = doc.paths?.["/v1/sync/pull"]?.get;
      this.features = { wait: !!pull?.parameters?.some((p) => p.name === "wait"), enrol: !!doc.paths?.["/v1/enrol"] };
    } catch {
      this.features = { wait: false, enrol: false };
    }
    return this.features;
  }

  /** Sync now: photos, push, pull (one at a time; a call while one runs joins it). */
  sync() {
    if (!this.running) {
      this.abortPoll();
      this.running = this.run().finally(() => { this.running = null; this.onChange(); });
    }
    return this.running;
  }

  async run() {
    await this.pollStep?.catch(() => {});  // a long poll aborted by sync() ends first
    const report = { pushed: 0, rejected: 0, pulled: 0, conflicts: 0, blobs: 0, restored: 0, warnings: [] };
    let error = null;
    try {
      await this.learnScope();
      await this.uploadBlobs(report);
      await this.push(report);
      await this.pull(report);
      if (await waiting(this.local)) {
        const [queued, skipped] = await requeue(this.local, this.schema);
        report.restored += queued;
        if (skipped) report.warnings.push({ code: "restore_skipped", detail: `${skipped} bản ghi do người khác tạo; thiết bị của họ sẽ gửi lại` });
        if (queued) { await this.push(report); await this.pull(report); }
      }
    } catch (e) {
      error = e;
    }
    const last = { at: new Date().toISOString(), ok: !error, error: error ? error.message : null, ...report };
    await this.local.setMeta({ last_sync: last });
    if (error) { error.report = report; throw error; }
    return report;
  }

  /** The device's user and wards, from the server (`GET /v1/me`): after a token is
   * entered, and then a few times a day. A server without the call (404) is left alone:
   * the app then takes the ward of the records it pulled. */
  async learnScope({ force = false } = {}) {
    const m = this.local.meta;
    if (!force && m.scope_at && Date.now() - m.scope_at < SCOPE_TTL_MS) return m.scope;
    const response = await this.send("GET", "/v1/me", { headers: { Accept: "application/json" }, ok: [404] });
    if (response.status === 404) { await this.local.setMeta({ scope_at: Date.now() }); return null; }
    const scope = await response.json();
    await this.local.setScope(scope);
    return scope;
  }

  // -- photos ---------------------------------------------------------------------------

  async uploadBlobs(report) {
    for (const blob of await this.local.blobsToUpload()) {
      const path = `/v1/blobs/${blob.id}`;
      const head = await this.send("HEAD", path, { ok: [403, 404] });
      if (head.status === 200) { await this.local.markBlob(blob.id, true); continue; }
      let offset = Number(head.headers.get("Upload-Offset") || 0);
      try {
        while (true) {
          const end = blob.size <= CHUNK && offset === 0 ? blob.size : Math.min(blob.size, offset + CHUNK);
          const headers = { "Content-Type": "application/octet-stream" };
          if (!(offset === 0 && end === blob.size)) headers["Content-Range"] = `bytes ${offset}-${end - 1}/${blob.size}`;
          const r = await this.send("PUT", path, { body: blob.blob.slice(offset, end), headers, ok: [409] });
          if (r.status === 200 || r.status === 201) break;
          offset = Number(r.headers.get("Upload-Offset") || (r.status === 202 ? end : 0));
        }
        await this.local.markBlob(blob.id, true);
        report.blobs += 1;
      } catch (e) {
        if (!(e instanceof ProblemError) || ![413, 422].includes(e.status)) throw e;
        await this.local.markBlob(blob.id, "refused");  // never blocks the outbox
        report.warnings.push({ code: "blob_refused", detail: `${blob.id}: ${e.message}` });
      }
    }
  }

  /** A photo another device took: fetched once, checked against its id, kept. */
  async fetchBlob(id) {
    const response = await this.send("GET", `/v1/blobs/${id}`, { attempts: 2 });
    const blob = await response.blob();
    const { blobId } = await import("./photos.js");
    if ((await blobId(blob)) !== id) throw new Error(`${id}: the bytes do not match`);
    await this.local.putBlob(id, blob, true);
    return blob;
  }

  // -- push -----------------------------------------------------------------------------

  async push(report) {
    this.pendingHint = await this.local.pendingCount();
    const upto = await this.local.lastRow();  // edits made during this sync wait for the next
    for (const stale of await this.local.inFlight()) await this.post(stale, report);
    let size = MAX_CHANGES;
    for (let frozen = await this.local.freeze(size, MAX_BYTES, upto); frozen; frozen = await this.local.freeze(size, MAX_BYTES, upto)) {
      const outcome = await this.post(frozen, report);
      if (typeof outcome === "number") size = outcome;
    }
  }

  /** Send one change set; answers nothing when settled, or a smaller size to freeze at. */
  async post(frozen, report) {
    let response;
    try {
      const [body, encoding] = await this.encodeBody(frozen.body);
      response = await this.send("POST", "/v1/sync/push", { body, headers: { "Content-Type": "application/json", ...encoding } });
    } catch (e) {
      if (e instanceof ProblemError && e.status === 409) {  // this id was used with another body
        await this.local.unfreeze(frozen);
        report.warnings.push({ code: "changeset_reused", detail: e.message });
        return Math.max(frozen.rows.length, 1);
      }
      if (e instanceof ProblemError && [400, 413, 422].includes(e.status)) {
        if (frozen.rows.length > 1) { await this.local.unfreeze(frozen); return Math.max(1, frozen.rows.length >> 1); }
        const code = (e.problem.type || "invalid").split(":").at(-1);
        report.rejected += await this.local.deadLetterWhole(frozen, e.problem.errors?.length ? e.problem.errors : [{ code, detail: e.message }]);
        return undefined;
      }
      throw e;
    }
    const answer = await response.json();
    if (answer.changeset_id !== frozen.changeset_id) throw new Error(`sent change set ${frozen.changeset_id}, the answer is for ${answer.changeset_id}`);
    const settled = await this.local.settle(frozen, answer);
    report.pushed += settled.applied;
    report.rejected += settled.rejected;
    report.conflicts += (answer.conflicts || []).length;
    for (const w of answer.warnings || []) report.warnings.push(w);
    this.onChange();
    return undefined;
  }

  /** A push body gzipped (PROTOCOL.md §1) when that saves bytes: from 1 KiB, as the server
   * does for its answers (below that the gzip header and a round of a slow link's time
   * cost more than they save). The frozen text stays the change set's identity: the
   * server hashes what it decodes, so a retry sent gzipped or not is the same change set. */
  async encodeBody(text) {
    if (text.length < GZIP_FROM || typeof CompressionStream === "undefined") return [text, {}];
    const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
    const packed = new Uint8Array(await new Response(stream).arrayBuffer());
    return packed.byteLength < new TextEncoder().encode(text).byteLength ? [packed, { "Content-Encoding": "gzip" }] : [text, {}];
  }

  // -- pull -----------------------------------------------------------------------------

  async pull(report, { wait = 0, signal } = {}) {
    try {
      return await this.pullPages(report, wait, signal);
    } catch (e) {
      if (!(e instanceof ServerReset)) throw e;
      await this.local.reset();
      report.warnings.push({ code: "server_reset", detail: "Máy chủ đã được khôi phục từ bản sao lưu: đã tải lại toàn bộ dữ liệu, giữ nguyên các thay đổi chưa gửi" });
      return this.pullPages(report, 0, signal);
    }
  }

  async pullPages(report, wait, signal) {
    let first = true;
    while (true) {
      const params = new URLSearchParams({ limit: String(PAGE) });
      if (this.local.meta.cursor) params.set("cursor", this.local.meta.cursor);
      if (first && wait) params.set("wait", String(wait));
      first = false;
      const response = await this.send("GET", `/v1/sync/pull?${params}`, { headers: { Accept: "application/json" }, signal });
      const page = await response.json();
      await this.local.applyPage(page);
      report.pulled += page.records.length;
      if (page.records.length) this.onChange();
      if (!page.more) return report;
    }
  }

  // -- live: long polls while the app is open and online ------------------------------

  abortPoll() { this.pollAbort?.abort(); }

  /** Pull in long polls while the app is open, visible, online and enrolled (only if the
   * server supports `wait`). A poll answered at once with nothing new (a server that
   * ignores `wait`) is followed by a pause, so the app never polls in a tight loop. */
  async live() {
    const features = await this.detect();
    if (!features.wait || this.polling) return;
    const awake = () => navigator.onLine && document.visibilityState !== "hidden" && this.local.meta.token && !this.local.meta.revoked;
    this.polling = (async () => {
      let failures = 0;
      while (awake()) {
        if (this.running) { await this.running.catch(() => {}); continue; }
        this.pollAbort = new AbortController();
        const started = Date.now();
        try {
          this.pollStep = this.pull({ pulled: 0, warnings: [] }, { wait: LONG_POLL_S, signal: this.pollAbort.signal });
          const report = await this.pollStep;
          failures = 0;
          if (!report.pulled && Date.now() - started < 1000) await sleep(this.idlePauseMs, this.pollAbort.signal);
        } catch (e) {
          if (e instanceof RevokedError) { this.onChange(); break; }
          if (!this.pollAbort.signal.aborted) await sleep(retryAfter(null, ++failures));
        } finally {
          this.pollStep = null;
        }
      }
    })().finally(() => { this.polling = null; });
  }
}
