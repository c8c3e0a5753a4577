// The officers' handheld app: screens, forms and the sync status. Data lives in
// IndexedDB (store.js); nothing here talks to the server except through sync.js.

import { Local, LocalError } from "./store.js";
import { Schema, rfc3339 } from "./schema.js";
import { OfflineError, ProblemError, RevokedError, Syncer } from "./sync.js";
import { COLLECTIONS, ERRORS, label, valueLabel } from "./labels.js";
import { fold, nfc } from "./values.js";
import { takePhoto } from "./photos.js";
import { icon } from "./icons.js";

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const state = { local: null, schema: null, syncer: null, error: null, busy: false };
const FORMS = ["premises", "checks", "violations", "patrols", "tips", "safety_groups", "fire_points"];
const TITLE = (r) => r.fields.name || r.fields.summary || r.fields.record_no || valueLabel(r.fields.kind || r.fields.category || "") || r.id;

function clockTime(text) {
  const d = new Date(text);
  const today = d.toDateString() === new Date().toDateString();
  return d.toLocaleString("vi-VN", today ? { timeStyle: "short" } : { dateStyle: "short", timeStyle: "short" });
}

function when(text) {
  if (!text) return "";
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? text : d.toLocaleString("vi-VN", { dateStyle: "short", timeStyle: "short" });
}

// -- boot -----------------------------------------------------------------------------

async function boot() {
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
  state.local = await Local.open();
  state.schema = await Schema.load();
  state.syncer = new Syncer(state.local, state.schema, { onChange: () => refreshStatus() });
  window.patrolApp = state;  // for the tests and the benchmark
  addEventListener("online", () => { if (enrolled()) syncNow(); });
  addEventListener("offline", () => refreshStatus());
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && enrolled() && navigator.onLine) state.syncer.live(); });
  addEventListener("hashchange", render);
  const code = new URLSearchParams(location.hash.slice(1)).get("enrol");
  if (code) { renderEnrol(); $("#code").value = code; return; }  // also a re-issued token, enrolled or not
  await render();
  if (enrolled() && navigator.onLine) { syncNow(); }
}

const enrolled = () => !!state.local.meta.token;

async function syncNow() {
  if (!enrolled()) return;
  state.busy = true; state.error = null; refreshStatus();
  try {
    const report = await state.syncer.sync();
    const warn = report.warnings.find((w) => w.code === "server_reset");
    if (warn) state.notice = warn.detail;  // stays until the officer taps it away
    state.syncer.live();
  } catch (e) {
    state.error = e instanceof RevokedError ? e.message : e instanceof OfflineError ? "Chưa đồng bộ được: không có kết nối mạng" : `Chưa đồng bộ được: ${e.message}`;
  } finally {
    state.busy = false;
    await refreshStatus();
    if (!/^#(new|edit|fix)\//.test(location.hash)) render();
  }
}

// -- chrome: header, status bar, bottom navigation -----------------------------------

async function refreshStatus() {
  const bar = $("#status");
  if (!bar || !enrolled()) return;
  const pending = await state.local.pendingCount();
  const dead = (await state.local.deadLetters()).length;
  const last = state.local.meta.last_sync;
  const revoked = state.local.meta.revoked;
  bar.replaceChildren(...[
    navigator.onLine ? h("span", { class: "dot on", title: "Có mạng" }) : h("span", { class: "badge offline" }, "Ngoại tuyến"),
    h("span", { "data-testid": "pending", class: "pending" }, pending ? `${pending} thay đổi chờ gửi` : "Đã đồng bộ"),
    dead ? h("a", { href: "#sync", class: "badge warn" }, `${dead} bị từ chối`) : null,
    h("span", { class: "last" }, last ? `Lúc ${clockTime(last.at)}` : "Chưa đồng bộ"),
  ].filter(Boolean));
  const msg = $("#message");
  const text = revoked ? "Thiết bị bị thu hồi: mã truy cập không còn hiệu lực. Hãy liên hệ quản trị để cấp lại." : state.error || state.notice;
  const dismiss = () => { state.notice = null; refreshStatus(); };
  msg.replaceChildren(text ? h("div", { class: revoked || state.error ? "alert" : "note", "data-testid": "message", onclick: revoked || state.error ? null : dismiss }, text) : "");
  const btn = $("#sync-btn");
  btn.disabled = state.busy;
  btn.classList.toggle("spin", state.busy);
}

function shell(...content) {
  const app = $("#app");
  app.replaceChildren(...[
    h("header", {},
      h("a", { href: "#", class: "brand" }, h("img", { src: "/app/icons/icon.svg", alt: "" }), "Tuần tra"),
      h("span", { class: "ward", "data-testid": "ward" }, state.local.wardName()),
      h("button", { id: "sync-btn", class: "sync", "data-testid": "sync", title: "Đồng bộ", onclick: syncNow }, icon("sync", 18), "Đồng bộ"),
    ),
    h("div", { id: "status", class: "status" }),
    h("div", { id: "message" }),
    h("main", {}, ...content),
    /^#(new|edit|fix)\//.test(location.hash) ? null : h("nav", { class: "tabs" },
      [["#", "home", "Trang chủ"], ["#list/premises", "building", "Cơ sở"], ["#list/checks", "clipboard", "Kiểm tra"], ["#list/violations", "alert", "Vi phạm"], ["#sync", "sync", "Đồng bộ"]]
        .map(([href, name, text]) => h("a", { href, class: location.hash === href || (href === "#" && !location.hash) ? "active" : "" }, icon(name), text)),
    ),
  ].filter(Boolean));
  refreshStatus();
}

// -- screens ----------------------------------------------------------------------------

// Renders run one after another, each for the hash of its start: a slow one (a sync's)
// can never paint over the screen the officer has since moved to.
let rendering = Promise.resolve();
function render() {
  rendering = rendering.then(renderNow, renderNow);
  return rendering;
}

async function renderNow() {
  if (!enrolled()) return renderEnrol();
  const [screen, a, b] = location.hash.slice(1).split("?")[0].split("/");
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (screen === "list") return renderList(a);
  if (screen === "new") return renderForm(a, null, params);
  if (screen === "edit") return renderForm(a, b, params);
  if (screen === "premises") return renderPremises(a);
  if (screen === "sync") return renderSync();
  if (screen === "fix") return renderFix(Number(a));
  return renderHome();
}

function renderEnrol() {
  const error = h("div", { id: "enrol-error", class: "error-text" });
  const codeForm = h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); enrolWithCode($("#code").value.trim(), error); } },
    h("h2", {}, "Kích hoạt thiết bị"),
    h("p", { class: "muted" }, "Quét mã QR hoặc nhập mã kích hoạt do quản trị cấp (dùng một lần, hiệu lực 10 phút)."),
    field("Mã kích hoạt", h("input", { id: "code", name: "code", autocomplete: "one-time-code", autocapitalize: "characters" })),
    h("button", { class: "primary", type: "submit" }, "Kích hoạt"),
  );
  const tokenForm = h("form", { class: "card", onsubmit: (e) => { e.preventDefault(); enrolWithToken(e.target, error); } },
    h("h3", {}, "Hoặc nhập mã truy cập"),
    field("Mã thiết bị", h("input", { name: "device_id", required: true, pattern: "[A-Za-z0-9_-]{1,64}" })),
    field("Mã truy cập (token)", h("input", { name: "token", required: true, type: "password" })),
    h("button", { type: "submit" }, "Lưu"),
  );
  $("#app").replaceChildren(h("main", { class: "enrol" }, h("div", { class: "hero" }, h("img", { src: "/app/icons/icon.svg", alt: "" }), h("h1", {}, "Tuần tra"), h("p", {}, "Ghi nhận kiểm tra, vi phạm, tuần tra — cả khi không có sóng")), error, codeForm, tokenForm));
}

async function enrolWithCode(code, error) {
  if (!code) return;
  try {
    const r = await fetch("/v1/enrol", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ code }) });
    if (r.status === 404) { error.textContent = "Mã kích hoạt không đúng, đã dùng hoặc đã hết hạn."; return; }
    if (!r.ok) { error.textContent = `Không kích hoạt được (HTTP ${r.status}).`; return; }
    const d = await r.json();
    await saveEnrolment({ device_id: d.device_id, token: d.token, user_id: d.user_id || null }, d.scope);
  } catch {
    error.textContent = "Không có kết nối mạng: cần mạng để kích hoạt.";
  }
}

async function enrolWithToken(form, error) {
  const data = Object.fromEntries(new FormData(form));
  if (!data.device_id || !data.token) { error.textContent = "Cần mã thiết bị và mã truy cập."; return; }
  await saveEnrolment({ device_id: data.device_id, token: data.token });
}

/** A new token (first enrolment or re-issued) replaces the old; the outbox is kept, and a
 * different device starts from a clean store. The ward and the officer's name come from
 * the server (the enrol answer's scope, or `GET /v1/me` for a typed token): never typed. */
async function saveEnrolment(values, scope) {
  if (state.local.meta.device_id && state.local.meta.device_id !== values.device_id) await state.local.wipe();
  await state.local.setMeta({ ...values, revoked: false, scope: null, scope_at: null });
  if (scope) await state.local.setScope(scope);
  else if (navigator.onLine) await state.syncer.learnScope({ force: true }).catch(() => {});  // else at the next sync
  history.replaceState(null, "", "/app/#");
  state.error = null;
  await render();
  if (navigator.onLine) syncNow();
}

async function wardOf() {
  if (state.local.meta.ward_id) return state.local.meta.ward_id;
  const counts = {};
  for (const c of FORMS) for (const r of await state.local.list(c)) counts[r.ward_id] = (counts[r.ward_id] || 0) + 1;
  const ward = Object.entries(counts).sort((a, b) => b[1] - a[1])[0]?.[0];
  if (ward) await state.local.setMeta({ ward_id: ward });
  return ward || null;
}

async function renderHome() {
  await wardOf();
  const results = h("div", { class: "list", id: "results" });
  const premises = await state.local.list("premises");
  const show = (q) => {
    const f = fold(q).trim().split(/\s+/).filter(Boolean);
    const hits = premises.filter((p) => { const text = fold([p.fields.name, p.fields.address, p.fields.owner_name].join(" ")); return f.every((w) => text.includes(w)); });
    results.replaceChildren(...hits.slice(0, 30).map(premisesRow), q && !hits.length ? h("p", { class: "muted" }, "Không tìm thấy cơ sở nào.") : "");
  };
  shell(
    h("div", { class: "search" }, h("input", { type: "search", id: "search", placeholder: "Tìm cơ sở: tên, địa chỉ, chủ…", oninput: (e) => show(e.target.value) })),
    results,
    h("h2", { class: "section" }, "Công việc hôm nay"),
    h("div", { class: "tiles" },
      tile("#new/premises", "building", "Thêm cơ sở"),
      tile("#list/checks", "clipboard", "Kiểm tra"),
      tile("#list/violations", "alert", "Vi phạm"),
      tile("#list/patrols", "walk", "Ca tuần tra"),
      tile("#list/tips", "message", "Tin báo"),
      tile("#list/safety_groups", "users", "Tổ liên gia"),
      tile("#list/fire_points", "fire", "Điểm chữa cháy"),
      tile("#new/tips", "plus", "Nhận tin báo"),
    ),
  );
  show("");
}

const tile = (href, name, text) => h("a", { href, class: "tile" }, icon(name, 26), text);

function premisesRow(p) {
  return h("a", { class: "row", href: `#premises/${p.id}`, "data-testid": "premises-row" },
    h("div", { class: "t" }, p.fields.name, p.pending ? h("span", { class: "chip" }, "chờ gửi") : ""),
    h("div", { class: "s" }, [valueLabel(p.fields.kind), p.fields.address].filter(Boolean).join(" · ")));
}

function recordRow(collection, r) {
  const sub = [r.fields.status && valueLabel(r.fields.status), r.fields.result && valueLabel(r.fields.result), when(r.fields.started_at || r.fields.received_at || r.fields.created_at)].filter(Boolean).join(" · ");
  return h("a", { class: "row", href: collection === "premises" ? `#premises/${r.id}` : `#edit/${collection}/${r.id}`, "data-testid": `${collection}-row` },
    h("div", { class: "t" }, TITLE(r), r.pending ? h("span", { class: "chip" }, "chờ gửi") : "", (r.fields.photos || []).length ? h("span", { class: "chip photo" }, icon("photo", 13), String(r.fields.photos.length)) : ""),
    h("div", { class: "s" }, sub));
}

async function renderList(collection) {
  const records = (await state.local.list(collection)).sort((a, b) => String(b.fields.created_at || "").localeCompare(String(a.fields.created_at || "")));
  const names = collection === "checks" || collection === "violations" ? Object.fromEntries((await state.local.list("premises")).map((p) => [p.id, p.fields.name])) : {};
  shell(
    h("div", { class: "title" }, h("h2", {}, COLLECTIONS[collection]), collection !== "checks" && collection !== "violations" ? h("a", { class: "primary small", href: `#new/${collection}` }, icon("plus", 16), "Thêm") : ""),
    collection === "checks" || collection === "violations" ? h("p", { class: "muted" }, "Chọn cơ sở để ghi kiểm tra hoặc lập vi phạm.") : "",
    h("div", { class: "list" }, records.length ? records.map((r) => { const row = recordRow(collection, r); if (names[r.fields.premises_id]) row.append(h("div", { class: "s" }, names[r.fields.premises_id])); return row; }) : h("p", { class: "muted" }, "Chưa có bản ghi.")),
  );
}

async function renderPremises(id) {
  const p = await state.local.get("premises", id);
  if (!p) return shell(h("p", {}, "Không có cơ sở này trên máy."));
  const checks = (await state.local.list("checks")).filter((c) => c.fields.premises_id === id);
  const violations = (await state.local.list("violations")).filter((v) => v.fields.premises_id === id);
  shell(
    h("div", { class: "card" },
      h("h2", {}, p.fields.name), h("p", { class: "muted" }, [valueLabel(p.fields.kind), p.fields.address, p.fields.owner_name].filter(Boolean).join(" · ")),
      h("div", { class: "actions" },
        h("a", { class: "primary", href: `#new/checks?premises=${id}`, "data-testid": "new-check" }, icon("clipboard", 18), "Ghi kiểm tra"),
        h("a", { class: "button", href: `#new/violations?premises=${id}`, "data-testid": "new-violation" }, icon("alert", 18), "Lập vi phạm"),
        h("a", { class: "button", href: `#edit/premises/${id}`, title: "Sửa" }, icon("edit", 18)))),
    h("h3", { class: "section" }, `Kiểm tra (${checks.length})`), h("div", { class: "list" }, checks.map((c) => recordRow("checks", c))),
    h("h3", { class: "section" }, `Vi phạm (${violations.length})`), h("div", { class: "list" }, violations.map((v) => recordRow("violations", v))),
  );
}

async function renderSync() {
  const dead = await state.local.deadLetters();
  const conflicts = await state.local.conflicts();
  const rows = await state.local.pendingRows();
  const m = state.local.meta;
  const last = m.last_sync;
  shell(
    h("div", { class: "card" }, h("h2", {}, "Đồng bộ"),
      h("dl", {},
        h("dt", {}, "Thiết bị"), h("dd", {}, m.device_id), h("dt", {}, "Cán bộ"), h("dd", { "data-testid": "officer" }, m.scope ? `${m.scope.user_name} (${m.user_id})` : m.user_id || "—"),
        h("dt", {}, "Phường"), h("dd", {}, m.scope ? m.scope.wards.map((w) => w.name).join(", ") || "—" : m.ward_id || "—"),
        h("dt", {}, "Chờ gửi"), h("dd", { "data-testid": "pending-count" }, String(new Set(rows.map((r) => `${r.collection}/${r.id}`)).size)),
        h("dt", {}, "Lần cuối"), h("dd", {}, last ? `${when(last.at)} — ${last.ok ? `gửi ${last.pushed}, nhận ${last.pulled}${last.blobs ? `, ${last.blobs} ảnh` : ""}` : last.error}` : "chưa"))),
    h("h3", { class: "section" }, `Bị từ chối (${dead.length})`),
    h("div", { class: "list", "data-testid": "dead-letters" }, dead.map((d) => h("div", { class: "row" },
      h("div", { class: "t" }, `${COLLECTIONS[d.collection] || d.collection}: ${d.record_id.slice(-8)}`),
      h("div", { class: "s" }, d.errors.map((e) => `${e.field ? label(e.field) + ": " : ""}${e.detail || e.code}`).join("; ")),
      h("div", { class: "actions" },
        h("a", { class: "button small", href: `#fix/${d.n}`, "data-testid": "fix" }, icon("edit", 16), "Sửa và gửi lại"),
        h("button", { class: "small", onclick: async () => { await state.local.dropDeadLetter(d.n); render(); } }, "Bỏ qua"))))),
    h("h3", { class: "section" }, `Xung đột (${conflicts.length})`),
    h("div", { class: "list", "data-testid": "conflicts" }, conflicts.map((c) => h("div", { class: "row" },
      h("div", { class: "t" }, `${COLLECTIONS[c.collection] || c.collection} · ${c.field ? label(c.field) : "xóa"}`),
      h("div", { class: "s" }, `Giữ: ${JSON.stringify(c.winner === "server" ? c.server.value : c.client.value)} — không giữ: ${JSON.stringify(c.winner === "server" ? c.client.value : c.server.value)}`),
      h("button", { class: "small", onclick: async () => { await state.local.dropConflict(c.id); render(); } }, "Đã xem")))),
    h("div", { class: "card" }, h("h3", {}, "Mã truy cập mới"), h("p", { class: "muted" }, "Khi quản trị cấp lại mã, nhập lại tại đây; các thay đổi chờ gửi được giữ nguyên."),
      h("button", { onclick: async () => { await state.local.setMeta({ token: null }); render(); }, "data-testid": "re-enrol" }, "Nhập mã mới")),
  );
}

// -- forms built from the server's schema -------------------------------------------------

function field(text, input, hint) {
  return h("label", { class: "field" }, h("span", {}, text), input, hint ? h("small", { class: "error-text" }, hint) : "");
}

const HIDDEN = { checks: ["premises_id", "officer_id", "team_id", "officers"], violations: ["premises_id", "check_id"], tips: ["premises_id"], patrols: ["route"] };

function inputFor(f, value, collection) {
  const attrs = { name: f.name, id: `f-${f.name}`, required: f.required || null };
  if (f.type === "enum") {
    const order = state.schema.ranks(collection)[f.name];
    const values = order ? [...f.enum].sort((a, b) => order[a] - order[b]) : f.enum;
    return h("select", attrs, f.required ? null : h("option", { value: "" }, "—"), values.map((v) => h("option", { value: v, selected: v === value }, valueLabel(v))));
  }
  if (f.type === "boolean") return h("select", attrs, h("option", { value: "" }, "—"), h("option", { value: "true", selected: value === true }, "Có"), h("option", { value: "false", selected: value === false }, "Không"));
  if (f.type === "integer" || f.type === "number") return h("input", { ...attrs, type: "number", inputmode: f.type === "integer" ? "numeric" : "decimal", step: f.type === "integer" ? "1" : "any", min: f.min, max: f.max, value: value ?? "" });
  if (f.type === "datetime") return h("input", { ...attrs, type: "datetime-local", value: value ? rfc3339(new Date(value)).slice(0, 16) : "" });
  if (f.type === "date") return h("input", { ...attrs, type: "date", value: value ?? "" });
  if (f.type === "set") return h("input", { ...attrs, required: null, value: (value || []).join(", "), placeholder: "cách nhau bởi dấu phẩy" });
  if (f.long) return h("textarea", { ...attrs, rows: 3 }, value ?? "");
  return h("input", { ...attrs, value: value ?? "", maxlength: f.maxLength });
}

function readInput(f, el) {
  const raw = el.value.trim();
  if (f.type === "set") return raw ? [...new Set(raw.split(",").map((s) => nfc(s.trim())).filter(Boolean))] : [];
  if (raw === "") return null;
  if (f.type === "integer") return Number.isInteger(Number(raw)) ? Number(raw) : raw;
  if (f.type === "number") return Number(raw);
  if (f.type === "boolean") return raw === "true";
  if (f.type === "datetime") return rfc3339(new Date(raw));
  return nfc(raw);
}

/** A refused change (dead letter) in its form: the record as the change left it, the
 * server's error under each field it names, resent with the officer's corrections
 * (store.js `requeue`, the SDK's rules) or discarded. */
async function renderFix(n) {
  const letter = await state.local.deadLetter(n);
  if (!letter) return shell(h("p", { class: "muted" }, "Thay đổi này không còn trong danh sách bị từ chối."));
  const held = await state.local.get(letter.collection, letter.record_id);
  const fields = held ? structuredClone(held.fields) : {};
  for (const [name, edit] of Object.entries(letter.change.fields || {})) {
    if ("value" in edit) { fields[name] = edit.value; continue; }
    const elements = new Set(fields[name] || []);
    for (const e of edit.add || []) elements.add(e);
    for (const e of edit.remove || []) elements.delete(e);
    fields[name] = [...elements].sort();
  }
  const existing = { collection: letter.collection, id: letter.record_id, ward_id: held ? held.ward_id : fields.ward_id, fields, letter };
  return renderForm(letter.collection, letter.record_id, new URLSearchParams(), existing);
}

async function renderForm(collection, id, params, fixing = null) {
  const existing = fixing || (id ? await state.local.get(collection, id) : null);
  const letter = fixing?.letter;
  const refusals = {};
  for (const e of letter?.errors || []) {
    // the reason in Vietnamese where the schema tells it, then the server's own words
    const why = e.field && e.field in existing.fields ? state.schema.check(collection, e.field, existing.fields[e.field]) : null;
    const words = (e.detail || "").replace(/ - at `\$[^`]*`$/, "");
    (refusals[e.field] ||= []).push([ERRORS[why] || ERRORS[e.code] || e.code, words].filter(Boolean).join(" — máy chủ: "));
  }
  const fields = state.schema.fields(collection);
  const context = {};
  const premisesId = params.get("premises") || existing?.fields.premises_id;
  if (collection === "checks" || collection === "violations") context.premises_id = premisesId;
  let premises = premisesId ? await state.local.get("premises", premisesId) : null;
  let checks = [];
  if (collection === "violations") {
    checks = (await state.local.list("checks")).filter((c) => c.fields.premises_id === premisesId).sort((a, b) => String(b.fields.started_at).localeCompare(String(a.fields.started_at)));
    context.check_id = params.get("check") || existing?.fields.check_id || checks[0]?.id;
  }
  const defaults = { started_at: rfc3339(), received_at: rfc3339(), status: collection === "tips" ? "new" : "open", result: null, active: null };
  const photos = [...(existing?.fields.photos || [])];
  const newPhotos = new Map();
  const thumbs = h("div", { class: "thumbs", "data-testid": "thumbs" });
  const showThumbs = async () => {
    thumbs.replaceChildren(...await Promise.all(photos.map(async (pid) => {
      let b = newPhotos.get(pid) || (await state.local.getBlob(pid))?.blob;
      if (!b && navigator.onLine) b = await state.syncer.fetchBlob(pid).catch(() => null);
      return b ? h("img", { src: URL.createObjectURL(b), alt: "ảnh" }) : h("div", { class: "thumb-missing" }, icon("photo"));
    })));
  };
  const inputs = {};
  const body = [];
  for (const f of fields) {
    if ((HIDDEN[collection] || []).includes(f.name)) continue;
    if (f.name === "photos") {
      body.push(h("div", { class: "field" }, h("span", {}, label("photos")), thumbs,
        h("label", { class: "button camera" }, icon("camera", 18), "Chụp ảnh",
          h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true, "data-testid": "camera", hidden: true, onchange: async (e) => {
            for (const file of e.target.files) { const [pid, blob] = await takePhoto(file); if (!photos.includes(pid)) { photos.push(pid); newPhotos.set(pid, blob); } }
            e.target.value = ""; await showThumbs();
          } }))));
      continue;
    }
    const value = existing ? existing.fields[f.name] : defaults[f.name];
    const input = inputFor(f, value, collection);
    inputs[f.name] = input;
    body.push(field(label(f.name) + (f.required ? " *" : ""), input, refusals[f.name]?.join("; ")));
  }
  let wardSelect = null;
  const refusedWard = letter && "ward_id" in (letter.change.fields || {}) && letter.errors.some((e) => e.code === "forbidden" || e.field === "ward_id");
  if (refusedWard && (state.local.meta.scope?.wards || []).length) {
    // a new record refused for its ward: the officer picks one of the device's wards
    const wards = state.local.meta.scope.wards;
    const pick = wards.some((w) => w.id === existing.ward_id) ? existing.ward_id : state.local.meta.ward_id;
    wardSelect = h("select", { name: "ward_id", id: "f-ward_id" }, wards.map((w) => h("option", { value: w.id, selected: w.id === pick }, w.name)));
    body.unshift(field(label("ward_id") + " *", wardSelect, refusals.ward_id?.join("; ")));
  }
  const elsewhere = Object.entries(refusals).filter(([name]) => !inputs[name] && !(name === "ward_id" && wardSelect)).flatMap(([, details]) => details);
  if (collection === "violations" && !existing) {
    body.unshift(field(label("check_id") + " *", h("select", { name: "check_id", id: "f-check_id" }, checks.map((c) => h("option", { value: c.id, selected: c.id === context.check_id }, `${valueLabel(c.fields.kind)} · ${when(c.fields.started_at)}`)))));
  }
  const error = h("div", { class: "error-text", "data-testid": "form-error" });
  const submit = async (e) => {
    e.preventDefault();
    const values = {};
    const problems = [];
    for (const f of fields) {
      const el = inputs[f.name];
      if (!el) continue;
      const v = readInput(f, el);
      if (f.type === "set") { values[f.name] = v; continue; }
      if (v === null && !f.required) { if (existing && existing.fields[f.name] != null) values[f.name] = null; continue; }
      const why = state.schema.check(collection, f.name, v);
      if (why) problems.push(`${label(f.name)}: ${ERRORS[why] || why}`);
      values[f.name] = v;
    }
    if (collection === "violations" && !existing) context.check_id = $("#f-check_id")?.value || context.check_id;
    if (photos.length) values.photos = photos;
    for (const [k, v] of Object.entries(context)) if (!existing && v) values[k] = v;
    if (!existing) {
      for (const name of state.schema.requiredNames(collection)) if (name !== "ward_id" && (values[name] === undefined || values[name] === null)) problems.push(`${label(name)}: ${ERRORS.required}`);
    }
    const ward = existing ? existing.ward_id : await wardOf();
    if (!ward) problems.push("Chưa biết phường của thiết bị: hãy đồng bộ một lần khi có mạng.");
    if (problems.length) { error.textContent = problems.join(" · "); return; }
    for (const [pid, blob] of newPhotos) if (photos.includes(pid)) await state.local.putBlob(pid, blob);
    try {
      if (letter) {
        const { changed, sets } = diffEdit(existing, values, fields);
        if (wardSelect && wardSelect.value !== existing.ward_id) changed.ward_id = wardSelect.value;
        await state.local.requeue(letter.n, { fixes: changed, sets });
        if (navigator.onLine) syncNow();
        location.hash = "#sync";
        return;
      }
      if (existing) await saveEdit(collection, existing, values, fields);
      else {
        const sets = {};
        for (const f of fields) if (f.type === "set") { sets[f.name] = values[f.name] || []; delete values[f.name]; }
        const newId = await state.local.create(collection, { ward_id: ward, ...Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null)) }, sets);
        if (collection === "premises") { if (navigator.onLine) syncNow(); location.hash = `#premises/${newId}`; return; }
      }
    } catch (err) {
      error.textContent = err instanceof LocalError ? err.message : String(err);
      return;
    }
    if (navigator.onLine) syncNow();
    location.hash = premisesId && collection !== "premises" ? `#premises/${premisesId}` : `#list/${collection}`;
  };
  shell(
    h("form", { class: "card form", "data-testid": `form-${collection}`, onsubmit: submit, novalidate: true },
      h("h2", {}, `${letter ? "Sửa và gửi lại" : existing ? "Sửa" : "Thêm"} ${COLLECTIONS[collection].toLowerCase()}`),
      letter ? h("div", { class: "alert", "data-testid": "refusal" }, "Máy chủ đã từ chối thay đổi này", elsewhere.length ? `: ${elsewhere.join("; ")}` : ". Sửa các ô được đánh dấu rồi gửi lại.") : "",
      premises && collection !== "premises" ? h("p", { class: "context" }, icon("building", 18), premises.fields.name) : "",
      ...body, error,
      h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", "data-testid": "save" }, letter ? "Gửi lại" : "Lưu"),
        letter ? h("button", { type: "button", class: "danger", "data-testid": "discard", onclick: async () => { await state.local.dropDeadLetter(letter.n); location.hash = "#sync"; } }, "Bỏ thay đổi")
        : existing ? h("button", { type: "button", class: "danger", onclick: async () => { if (confirm("Xóa bản ghi này?")) { await state.local.edit(collection, existing.id, { remove: true }); if (navigator.onLine) syncNow(); history.back(); } } }, "Xóa") : "")),
  );
  showThumbs();
}

async function saveEdit(collection, existing, values, fields) {
  const { changed, sets } = diffEdit(existing, values, fields);
  if (Object.keys(changed).length || Object.keys(sets).length) await state.local.edit(collection, existing.id, { values: changed, sets });
}

/** What a form changed of a record: values that differ, set elements added or removed. */
function diffEdit(existing, values, fields) {
  const changed = {};
  const sets = {};
  for (const f of fields) {
    if (!(f.name in values)) continue;
    if (f.type === "set") {
      const have = new Set(existing.fields[f.name] || []), want = new Set(values[f.name] || []);
      const diff = {};
      for (const e of want) if (!have.has(e)) diff[e] = true;
      for (const e of have) if (!want.has(e)) diff[e] = false;
      if (Object.keys(diff).length) sets[f.name] = diff;
    } else if (JSON.stringify(values[f.name]) !== JSON.stringify(existing.fields[f.name] ?? null)) changed[f.name] = values[f.name];
  }
  return { changed, sets };
}

boot().catch((e) => { document.body.textContent = `Lỗi khởi động: ${e.message}`; });
