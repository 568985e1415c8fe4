// The monitor page: reads the service's own API with the token the IT desk types
// in (kept for this tab only), every few seconds. Text from the journal or the
// platform is only ever set as text, never as HTML.
"use strict";

// Each label in Chinese and in English, side by side so that neither is forgotten.
const LABELS = {
  title: ["医保接口监控", "Medical insurance monitor"],
  logout: ["退出", "Log out"],
  login_title: ["输入访问令牌", "Enter the access token"],
  login_help: ["令牌是配置文件中的 http.token，由信息科保管。", "The token is http.token in the config file; the IT desk keeps it."],
  login_go: ["进入", "Enter"],
  today: ["今日交易", "Today's requests"],
  queue: ["队列", "Queue"],
  oldest: ["最早未完成", "Oldest unfinished"],
  settled: ["今日结算", "Settled today"],
  uncertain: ["结果未知的交易（需处理）", "Uncertain requests (need a decision)"],
  uncertain_help: ["平台可能已处理这些交易。冲正（2601）会撤销平台上的记录；请先确认患者未在其他窗口重新结算。", "The platform may have processed these. Reversing (2601) undoes it on the platform; first make sure the patient was not settled again at another desk."],
  col_id: ["请求号", "Request"],
  col_infno: ["交易", "Transaction"],
  col_detail: ["就诊 / 人员 / 金额", "Visit / person / amount"],
  col_since: ["时间", "Since"],
  col_attempts: ["次数", "Tries"],
  col_error: ["原因", "Why"],
  col_state: ["状态", "State"],
  latency: ["今日响应时间（毫秒，按小时）", "Latency today (ms, by hour)"],
  errors: ["最近的错误", "Last errors"],
  reconcile: ["对账（3201）", "Reconciliation (3201)"],
  reconcile_day: ["日期", "Day"],
  reconcile_go: ["与平台对账", "Reconcile with the platform"],
  col_group: ["险种 / 清算类别", "Insurance / clearing"],
  col_ours: ["本院", "Ours"],
  col_platform: ["平台", "Platform"],
  col_balanced: ["结果", "Result"],
  signed_in: ["已签到", "signed in"],
  not_signed_in: ["未签到", "not signed in"],
  reverse: ["冲正", "Reverse"],
  none: ["无", "none"],
  workers: ["工作线程 {0}/{1}", "workers {0}/{1}"],
  waiting: ["等待中", "waiting"],
  capacity: ["容量 {0}", "capacity {0}"],
  settlements: ["{0} 笔", "{0} settlements"],
  updated: ["更新于 {0}", "updated {0}"],
  confirm: ["确认冲正？\n\n请求号 {0}，交易 {1}，msgid {2}\n\n将向医保平台发送 2601 冲正交易，撤销该笔交易。", "Reverse this request?\n\nrequest {0}, transaction {1}, msgid {2}\n\nThis sends the reversal 2601 to the platform and undoes the transaction."],
  reversed_ok: ["请求 {0} 已冲正（冲正请求 {1}）。", "Request {0} reversed (by request {1})."],
  reverse_failed: ["请求 {0} 冲正未成功：{1}", "Request {0} was not reversed: {1}"],
  unreachable: ["无法连接监控服务：{0}", "Cannot reach the monitor service: {0}"],
  bad_token: ["令牌不正确。", "The token is not right."],
  balanced: ["平衡", "balanced"],
  unbalanced: ["不平", "NOT balanced"],
  reconciling: ["对账中……", "reconciling…"],
  reconciled: ["{0}：全部平衡", "{0}: every group balanced"],
  not_reconciled: ["{0}：有不平的类别，见下表", "{0}: some groups do not balance, see below"],
  left: ["，仍有 {0} 笔结果未知", ", {0} still uncertain"],
  p50: ["中位", "median"],
  p99: ["P99", "p99"],
  latency_now: ["最近 1000 次：中位 {0} ms，P99 {1} ms", "last 1,000: median {0} ms, p99 {1} ms"],
  no_latency: ["今日尚无应答", "no answers yet today"],
  ago: ["{0} 前", "{0} ago"],
  s: ["秒", "s"],
  m: ["分钟", "min"],
  h: ["小时", "h"],
};

const STATE_LABELS = {
  queued: ["排队", "queued"],
  sending: ["发送中", "sending"],
  retry_wait: ["待重试", "retry wait"],
  succeeded: ["成功", "succeeded"],
  business_error: ["业务错误", "business error"],
  failed: ["失败", "failed"],
  uncertain: ["结果未知", "uncertain"],
  reversed: ["已冲正", "reversed"],
};

const INFNOS = {
  "1101": ["人员信息获取", "person info"], "2201": ["门诊挂号", "outpatient registration"],
  "2203": ["门诊就诊信息上传", "visit upload"], "2204": ["门诊费用明细上传", "fee upload"],
  "2206": ["门诊预结算", "pre-settlement"], "2207": ["门诊结算", "outpatient settlement"],
  "2208": ["门诊结算撤销", "settlement cancel"], "2304": ["住院结算", "inpatient settlement"],
  "2305": ["住院结算撤销", "inpatient cancel"], "2601": ["冲正交易", "reversal"], "9001": ["签到", "sign-in"],
  "3201": ["对账", "reconciliation"],
};

const STATES = ["succeeded", "business_error", "failed", "uncertain", "reversed", "queued", "sending", "retry_wait"];
const TONE = { succeeded: "good", business_error: "warn", failed: "bad", uncertain: "bad" };

let lang = localStorage.getItem("mi_lang") || (navigator.language.startsWith("zh") ? "zh" : "en");
let token = sessionStorage.getItem("mi_token") || "";
let timer = null;

const $ = (id) => document.getElementById(id);
// The column of LABELS, STATE_LABELS and INFNOS in the language shown.
const col = () => (lang === "zh" ? 0 : 1);
function t(key, ...args) {
  const s = LABELS[key] ? LABELS[key][col()] : key;
  return s.replace(/\{(\d)\}/g, (_, i) => String(args[Number(i)]));
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.append(c instanceof Node ? c : el("td", c));
  return tr;
}
function infno(n) {
  const name = INFNOS[n];
  return name ? `${n} ${name[col()]}` : n;
}
function age(s) {
  if (s === null || s === undefined) return t("none");
  if (s < 120) return t("ago", `${s} ${t("s")}`);
  if (s < 7200) return t("ago", `${Math.round(s / 60)} ${t("m")}`);
  return t("ago", `${(s / 3600).toFixed(1)} ${t("h")}`);
}
function today() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

async function api(method, path, body) {
  const sent = token;
  const r = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${sent}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const v = await r.json();
  if (r.status === 401) {
    // A late answer to an old token must not log out the one typed since.
    if (sent === token) logout(t("bad_token"));
    throw new Error(t("bad_token"));
  }
  if (r.status >= 400) throw new Error(`${v.mi_code_name}: ${v.error}`);
  return v;
}

function labels() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  document.title = `mi_sdk ${t("title")}`;
}

function showProblem(text) {
  $("problem").hidden = !text;
  $("problem").textContent = text || "";
}
function notice(text, good) {
  $("notice").hidden = false;
  $("notice").className = `banner ${good ? "good" : "bad"}`;
  $("notice").textContent = text;
}

function drawStatus(st) {
  const s = st.sign_in;
  $("signin").textContent = `${s.opter_name} (${s.opter}) ${s.signed_in ? t("signed_in") : t("not_signed_in")}`;
  $("signin").className = `pill ${s.signed_in ? "good" : "bad"}`;
  $("gateway").textContent = `${st.fixmedins_code} · ${st.gateway.url}`;
  $("queue").textContent = `${st.queue_depth}`;
  const w = st.workers === undefined ? "" : ` · ${t("workers", st.workers_busy, st.workers)}`;
  $("workers").textContent = `${t("capacity", st.queue_capacity)}${w}`;
  $("oldest").textContent = st.oldest_unfinished_at ? age(st.oldest_unfinished_age_s) : t("none");
  $("oldest").className = `big ${st.oldest_unfinished_age_s > 60 ? "bad" : ""}`;
  $("oldest_at").textContent = st.oldest_unfinished_at || "";
  const l = st.latency_ms;
  $("latency_now").textContent = l.p50 === null ? "" : t("latency_now", l.p50, l.p99);
}

function drawReport(rep) {
  $("day").textContent = rep.date;
  const by = {};
  for (const b of rep.by_transaction) by[b.state] = (by[b.state] || 0) + b.count;
  const tiles = $("counts");
  tiles.replaceChildren();
  for (const s of STATES) {
    const tile = el("div", null, `tile ${by[s] ? TONE[s] || "" : ""}`);
    tile.dataset.state = s;
    tile.append(el("b", by[s] || 0), el("span", STATE_LABELS[s][col()]));
    tiles.append(tile);
  }
  $("settled").textContent = rep.settled.medfee_sumamt.toFixed(2);
  $("settled_n").textContent = t("settlements", rep.settled.count);
  drawChart(rep.latency_by_hour);
}

function drawChart(hours) {
  const box = $("chart");
  box.replaceChildren();
  if (!hours.length) {
    box.append(el("p", t("no_latency"), "muted"));
    return;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const W = 600, H = 130, top = 12, bottom = 16;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(...hours.map((h) => h.p99_ms), 1);
  const bw = W / 24;
  const y = (v) => H - bottom - (v / max) * (H - top - bottom);
  for (const h of hours) {
    for (const [k, cls, inset] of [["p99_ms", "p99", 3], ["p50_ms", "p50", 6]]) {
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", h.hour * bw + inset);
      r.setAttribute("width", bw - 2 * inset);
      // An hour with answers shows, however fast they were.
      const height = Math.max(H - bottom - y(h[k]), 2);
      r.setAttribute("y", H - bottom - height);
      r.setAttribute("height", height);
      r.setAttribute("class", cls);
      const title = document.createElementNS(ns, "title");
      title.textContent = `${h.hour}:00 · ${h.count} · ${t("p50")} ${h.p50_ms} ms · ${t("p99")} ${h.p99_ms} ms`;
      r.append(title);
      svg.append(r);
    }
  }
  for (let hour = 0; hour < 24; hour += 3) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", hour * bw + 2);
    label.setAttribute("y", H - 3);
    label.textContent = `${hour}:00`;
    svg.append(label);
  }
  const peak = document.createElementNS(ns, "text");
  peak.setAttribute("x", 2);
  peak.setAttribute("y", 10);
  peak.textContent = `${max} ms`;
  svg.append(peak);
  box.append(svg);
}

function drawUncertain(rows) {
  const body = $("uncertain");
  body.replaceChildren();
  $("uncertain_n").textContent = rows.length;
  $("uncertain_n").className = `pill ${rows.length ? "bad" : "good"}`;
  $("uncertain_card").classList.toggle("has", rows.length > 0);
  for (const r of rows) {
    const b = el("button", t("reverse"), "danger");
    b.type = "button";
    b.dataset.reverse = r.request_id;
    // Left enabled after an earlier reversal too: one that failed may be tried
    // again, and the service refuses one that is not needed.
    b.addEventListener("click", () => reverse(r, b));
    const cell = el("td");
    cell.append(b);
    const st = r.settlement;
    const detail = st ? `${st.mdtrt_id} · ${st.psn_no} · ${st.medfee_sumamt}` : "";
    const tr = row([String(r.request_id), infno(r.infno), r.msgid, detail, r.updated_at, String(r.attempts),
                    el("td", r.last_error || "", "msg"), cell]);
    tr.dataset.uncertain = r.request_id;
    body.append(tr);
  }
}

function drawErrors(rows) {
  const body = $("errors");
  body.replaceChildren();
  for (const r of rows) {
    body.append(row([r.updated_at.slice(5, 19), infno(r.infno), STATE_LABELS[r.state][col()],
                     el("td", r.last_error || "", "msg")]));
  }
}

async function reverse(r, button) {
  if (!window.confirm(t("confirm", r.request_id, infno(r.infno), r.msgid))) return;
  button.disabled = true;
  try {
    const v = await api("POST", `/v1/reverse/${r.request_id}`);
    if (v.mi_code === 0) {
      notice(t("reversed_ok", r.request_id, v.request_id), true);
    } else {
      const why = `${v.mi_code_name} ${v.error || (v.output && v.output.err_msg) || ""}`;
      notice(t("reverse_failed", r.request_id, why), false);
    }
  } catch (e) {
    notice(t("reverse_failed", r.request_id, e.message), false);
  }
  refresh();
}

async function reconcile() {
  const day = $("reconcile_day").value || today();
  $("reconcile_go").disabled = true;
  $("reconcile_state").textContent = t("reconciling");
  try {
    const v = await api("POST", "/v1/reconcile", { from: day });
    if (v.mi_code !== 0) throw new Error(`${v.mi_code_name}: ${v.error || (v.output && v.output.err_msg) || ""}`);
    const rep = v.output;
    let text = t(rep.balanced ? "reconciled" : "not_reconciled", rep.from);
    if (rep.uncertain_left) text += t("left", rep.uncertain_left);
    $("reconcile_state").textContent = text;
    $("reconcile_state").className = rep.balanced ? "good" : "bad";
    const body = $("reconcile");
    body.replaceChildren();
    const sums = (s) => `${Number(s.medfee_sumamt).toFixed(2)} / ${s.fixmedins_setl_cnt}`;
    for (const g of rep.groups) {
      body.append(row([`${g.insutype} / ${g.clr_type}`, sums(g.ours), sums(g.platform),
                       el("td", t(g.balanced ? "balanced" : "unbalanced"), g.balanced ? "good" : "bad")]));
    }
    $("reconcile_table").hidden = rep.groups.length === 0;
  } catch (e) {
    $("reconcile_state").textContent = e.message;
    $("reconcile_state").className = "bad";
  }
  $("reconcile_go").disabled = false;
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  try {
    // One after another: an open page takes one of the service's places
    // (http.max_concurrent) at a time, never five from the cashiers' calls.
    const st = await api("GET", "/v1/status");
    const rep = await api("GET", `/v1/report?date=${today()}`);
    const unc = await api("GET", "/v1/requests?state=uncertain&limit=100");
    const failed = await api("GET", "/v1/requests?state=failed&limit=8");
    const business = await api("GET", "/v1/requests?state=business_error&limit=8");
    drawStatus(st.output);
    drawReport(rep.output);
    drawUncertain(unc.output);
    const errors = failed.output.concat(business.output);
    errors.sort((a, b) => (a.updated_at < b.updated_at ? 1 : -1));
    drawErrors(errors.slice(0, 8));
    showProblem("");
    $("updated").textContent = t("updated", new Date().toLocaleTimeString());
    document.body.dataset.loaded = "yes";
  } catch (e) {
    if (!token) return;
    showProblem(t("unreachable", e.message));
  }
  if (token) timer = setTimeout(refresh, 5000);
}

function logout(why) {
  token = "";
  sessionStorage.removeItem("mi_token");
  clearTimeout(timer);
  $("board").hidden = true;
  $("login").hidden = false;
  $("token").value = "";
  $("login_error").textContent = why || "";
}

// A link may carry the token after '#', which no browser sends to a server; it is
// taken out of the address bar at once.
function tokenFromLink() {
  const m = location.hash.match(/token=([^&]+)/);
  if (!m) return false;
  history.replaceState(null, "", location.pathname);
  try {
    token = decodeURIComponent(m[1]);
  } catch (e) {
    return false;
  }
  sessionStorage.setItem("mi_token", token);
  return true;
}

function start() {
  $("login").hidden = true;
  $("board").hidden = false;
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  tokenFromLink();
  window.addEventListener("hashchange", () => {
    if (tokenFromLink()) start();
  });
  labels();
  $("reconcile_day").value = today();
  $("lang").addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    localStorage.setItem("mi_lang", lang);
    labels();
    refresh();
  });
  $("logout").addEventListener("click", () => logout(""));
  $("reconcile_go").addEventListener("click", reconcile);
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    sessionStorage.setItem("mi_token", token);
    start();
  });
  if (token) start();
  else logout("");
});
