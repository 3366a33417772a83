// The fleet dashboard: machines from /api/v1/stream (server-sent events), a table filtered by
// state, and the selected machine's timeline, one bar per stage of its current boot.
"use strict";
const machines = new Map();
let filter = "all";
let selected = null;

const $ = (sel) => document.querySelector(sel);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function dur(ms) {
  if (!(ms >= 0)) return "";
  const s = ms / 1000;
  if (s < 10) return s.toFixed(1) + "s";
  if (s < 60) return Math.round(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(Math.round(s % 60)).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

// spans returns the timeline's bars with their durations; the last one runs until now
// (on the machine's clock, estimated from when the server last heard from it).
function spans(m) {
  const tl = m.timeline || [];
  const skew = Date.parse(m.updated) - (tl.length ? Date.parse(tl[tl.length - 1].start) : 0);
  return tl.map((s, i) => {
    const start = Date.parse(s.start);
    let end = s.end ? Date.parse(s.end) : NaN;
    if (isNaN(end)) {
      const open = m.state !== "booted" && m.state !== "healthy" && m.state !== "failed";
      end = open ? Date.now() - (isNaN(skew) ? 0 : skew) : start;
      if (end < start) end = start;
    }
    return { stage: s.stage, start, end, ms: end - start, last: i === tl.length - 1 };
  });
}

function mini(m) {
  const bar = el("div", "mini");
  const sp = spans(m);
  const total = sp.reduce((a, s) => a + s.ms, 0) || 1;
  for (const s of sp) {
    const d = el("div", "s-" + s.stage);
    d.style.width = (100 * s.ms / total) + "%";
    d.title = s.stage + " " + dur(s.ms);
    bar.append(d);
  }
  return bar;
}

// stageNames are the words the table shows for the last event's type (its title keeps the type).
const stageNames = {
  started: "kernel started", network: "network up", menu: "menu shown", chosen: "entry chosen",
  fetch_start: "downloading", fetch_progress: "downloading", fetch_done: "downloaded",
  extracted: "extracted", failure: "failed", healthy: "healthy",
};

function stageCell(m) {
  const td = el("td", "stage", stageNames[m.stage] || m.stage);
  td.title = m.stage;
  return td;
}

function progress(m) {
  const p = el("span", "progress");
  const d = el("div");
  p.append(d);
  if (m.state === "failed") p.classList.add("failed"); // how far it got, not a success
  if (m.state === "booted" || m.state === "healthy") {
    d.style.width = "100%";
  } else if (m.total > 0) {
    d.style.width = Math.min(100, 100 * m.bytes / m.total).toFixed(1) + "%";
    p.title = bytes(m.bytes) + " of " + bytes(m.total);
  } else if (m.state === "downloading") {
    p.classList.add("indet");
    p.title = bytes(m.bytes || 0);
  } else {
    d.style.width = "0";
  }
  return p;
}

function row(m) {
  const tr = el("tr");
  tr.dataset.mac = m.mac;
  tr.dataset.state = m.state;
  if (m.mac === selected) tr.classList.add("sel");
  tr.append(el("td", "mac", m.mac), el("td", "ip", m.ip || ""), el("td", "host", m.hostname || ""), el("td", "entry", m.entry || ""));
  const st = el("td", "statecell");
  st.append(el("span", "state " + m.state, m.state));
  if (m.rollback) st.append(el("span", "rb", "rolled back to " + m.rollback.to + " (" + m.rollback.from + " failed " + m.rollback.failures + "×)"));
  tr.append(st, stageCell(m));
  const pc = el("td", "prog");
  pc.append(progress(m));
  tr.append(pc);
  tr.append(el("td", "rate", m.rate ? bytes(m.rate) + "/s" : ""));
  tr.append(el("td", "since", dur(Date.now() - Date.parse(m.stage_since))));
  const tc = el("td", "tl");
  tc.append(mini(m));
  tr.append(tc);
  tr.append(el("td", "err", m.last_error || ""));
  tr.addEventListener("click", () => { selected = m.mac; render(); });
  return tr;
}

function detail() {
  const box = $("#detail");
  const m = machines.get(selected);
  if (!m) { box.hidden = true; return; }
  box.hidden = false;
  box.querySelector("h2").textContent = "Boot " + m.boot_id + " of " + m.mac + (m.hostname ? " (" + m.hostname + ")" : "") + " — boot " + m.boots + " seen";
  const bars = box.querySelector(".bars");
  bars.replaceChildren();
  const sp = spans(m);
  if (!sp.length) return;
  const t0 = sp[0].start;
  const span = Math.max(1, sp[sp.length - 1].end - t0);
  for (const s of sp) {
    const r = el("div", "row");
    r.dataset.stage = s.stage;
    const track = el("div", "track");
    const b = el("div", "bar s-" + s.stage);
    b.style.left = (100 * (s.start - t0) / span) + "%";
    b.style.width = (100 * s.ms / span) + "%";
    track.append(b);
    r.append(el("span", "", s.stage), track, el("span", "dur", dur(s.ms)));
    bars.append(r);
  }
  const notes = [];
  if (m.healthy_entry) notes.push("last healthy entry: " + m.healthy_entry);
  if (m.rollback) notes.push("menu default rolled back from " + m.rollback.from + " to " + m.rollback.to);
  if (m.dropped) notes.push(m.dropped + " events lost on the way");
  if (m.serial || m.uuid) notes.push("DMI " + [m.serial, m.uuid].filter(Boolean).join(" "));
  box.querySelector(".note").textContent = notes.join(" · ");
}

function render() {
  const counts = { all: 0, booting: 0, downloading: 0, booted: 0, healthy: 0, failed: 0 };
  const list = [...machines.values()].sort((a, b) => a.mac.localeCompare(b.mac));
  const body = $("#machines tbody");
  body.replaceChildren();
  for (const m of list) {
    counts.all++;
    counts[m.state] = (counts[m.state] || 0) + 1;
    if (filter === "all" || m.state === filter) body.append(row(m));
  }
  for (const b of document.querySelectorAll("#filters button")) {
    b.classList.toggle("on", b.dataset.filter === filter);
    b.querySelector("span").textContent = counts[b.dataset.filter] || 0;
  }
  $("#empty").hidden = list.length > 0;
  detail();
}

for (const b of document.querySelectorAll("#filters button")) {
  b.addEventListener("click", () => { filter = b.dataset.filter; render(); });
}

function connect() {
  const es = new EventSource("../api/v1/stream");
  es.addEventListener("open", () => { $("#conn").className = "conn on"; $("#conn").textContent = "live"; });
  es.addEventListener("machine", (ev) => {
    const m = JSON.parse(ev.data);
    machines.set(m.mac, m);
    render();
  });
  es.addEventListener("error", () => { $("#conn").className = "conn off"; $("#conn").textContent = "reconnecting…"; });
}
connect();
setInterval(render, 1000);
