//! A self-contained HTML timeline of one run: one row per node showing its role and term
//! over time, crashes, freezes and other nemesis actions, partitions, and the messages of
//! one chosen kind as arrows. The page embeds its data and draws it with a little inline
//! JavaScript into an SVG (no external assets); a slider zooms.

use crate::config::MS;
use raft_core::{NodeId, Role, Term};
use std::fmt::Write as _;

/// (time, description or `None` when healed, one-way blocked links).
pub type PartitionChange = (u64, Option<String>, Vec<(NodeId, NodeId)>);

/// What a run recorded for its timeline.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// Node rows.
    pub nodes: usize,
    /// The message kind drawn as arrows (e.g. "Vote", "Append"; empty: none).
    pub kind: String,
    /// (time, node, role name, term): from this time on, the node is in this state.
    pub roles: Vec<(u64, NodeId, &'static str, Term)>,
    /// (time, node or 0 for the network, text): nemesis actions and notes.
    pub marks: Vec<(u64, NodeId, String)>,
    /// (time, description or `None` when healed, one-way blocked links).
    pub partitions: Vec<PartitionChange>,
    /// (sent, received, from, to) for messages of `kind`.
    pub messages: Vec<(u64, u64, NodeId, NodeId)>,
    /// When the run ended.
    pub end: u64,
    /// The violated property, if the run failed.
    pub failure: Option<String>,
    /// A title line (seed, profile, faults).
    pub title: String,
}

/// The name a timeline shows for a role.
pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower => "Follower",
        Role::PreCandidate => "PreCandidate",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
    }
}

fn js_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn ms(t: u64) -> String {
    format!("{:.3}", t as f64 / MS as f64)
}

impl Timeline {
    /// An empty timeline for `nodes` rows, drawing messages of `kind`.
    pub fn new(nodes: usize, kind: String) -> Self {
        Timeline { nodes, kind, ..Default::default() }
    }

    /// The data as a JavaScript object literal.
    fn data(&self) -> String {
        let mut d = String::new();
        let _ = write!(d, "{{\"nodes\":{},\"end\":{},\"kind\":{},", self.nodes, ms(self.end), js_str(&self.kind));
        let _ = write!(d, "\"title\":{},", js_str(&self.title));
        let _ = write!(d, "\"failure\":{},", self.failure.as_deref().map_or("null".into(), js_str));
        d.push_str("\"roles\":[");
        for (i, (t, n, r, term)) in self.roles.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(d, "{sep}[{},{n},\"{r}\",{term}]", ms(*t));
        }
        d.push_str("],\"marks\":[");
        for (i, (t, n, s)) in self.marks.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(d, "{sep}[{},{n},{}]", ms(*t), js_str(s));
        }
        d.push_str("],\"parts\":[");
        for (i, (t, desc, links)) in self.partitions.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let links: Vec<String> = links.iter().map(|(a, b)| format!("[{a},{b}]")).collect();
            let desc = desc.as_deref().map_or("null".into(), js_str);
            let _ = write!(d, "{sep}[{},{desc},[{}]]", ms(*t), links.join(","));
        }
        d.push_str("],\"msgs\":[");
        for (i, (s, r, a, b)) in self.messages.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(d, "{sep}[{},{},{a},{b}]", ms(*s), ms(*r));
        }
        d.push_str("]}");
        d
    }

    /// The complete HTML page.
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        page.push_str(HEAD);
        let _ = writeln!(page, "<script>const DATA = {};</script>", self.data());
        page.push_str(BODY);
        page
    }
}

const HEAD: &str = r##"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>raft-sim timeline</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 12px; color: #222; }
#wrap { overflow-x: auto; border: 1px solid #ccc; }
.legend span { display: inline-block; padding: 1px 6px; margin-right: 6px; border-radius: 3px; }
.fail { color: #b00; font-weight: bold; white-space: pre-wrap; }
svg text { font: 11px system-ui, sans-serif; }
</style></head><body>
"##;

const BODY: &str = r##"<h3 id="title"></h3>
<div class="fail" id="failure"></div>
<div class="legend">
 <span style="background:#e8e8e8">Follower</span><span style="background:#f7e08a">PreCandidate</span>
 <span style="background:#f5a35c">Candidate</span><span style="background:#5cb85c;color:#fff">Leader</span>
 <span style="background:#333;color:#fff">Down</span><span style="background:#7fb3e6">Frozen</span>
 <span style="background:#fbd5d5">partition</span>
 &nbsp; zoom <input id="zoom" type="range" min="-3" max="3" step="0.1" value="0">
 &nbsp; <label><input id="showmsgs" type="checkbox" checked> <span id="kind"></span> messages</label>
</div>
<div id="wrap"><svg id="svg" xmlns="http://www.w3.org/2000/svg"></svg></div>
<p>Hover over marks, bars and arrows for details. Times are simulated milliseconds.</p>
<script>
const COLORS = {Follower:"#e8e8e8", PreCandidate:"#f7e08a", Candidate:"#f5a35c", Leader:"#5cb85c",
  Down:"#333", Frozen:"#7fb3e6", Retired:"#999"};
const ROW = 46, TOP = 60, LEFT = 50;
document.getElementById("title").textContent = DATA.title;
document.getElementById("failure").textContent = DATA.failure ? "FAILED: " + DATA.failure : "";
document.getElementById("kind").textContent = DATA.kind || "(no)";
function el(tag, attrs, parent, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) { const t = document.createElementNS("http://www.w3.org/2000/svg", "title"); t.textContent = text; e.appendChild(t); }
  parent.appendChild(e); return e;
}
function draw() {
  const scale = 0.08 * Math.pow(4, parseFloat(document.getElementById("zoom").value));
  const svg = document.getElementById("svg");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const W = LEFT + DATA.end * scale + 40, H = TOP + DATA.nodes * ROW + 20;
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  const x = t => LEFT + t * scale, y = n => TOP + (n - 1) * ROW;
  // time axis
  let step = 1; while (step * scale < 70) step *= (String(step)[0] === "2" ? 2.5 : 2);
  for (let t = 0; t <= DATA.end; t += step) {
    el("line", {x1: x(t), x2: x(t), y1: 14, y2: H, stroke: "#eee"}, svg);
    el("text", {x: x(t) + 2, y: 12, fill: "#888"}, svg).textContent = t + " ms";
  }
  // partitions: a band on the network row and shading of cut nodes
  for (let i = 0; i < DATA.parts.length; i++) {
    const [t, desc, links] = DATA.parts[i];
    if (desc === null) continue;
    const until = i + 1 < DATA.parts.length ? DATA.parts[i + 1][0] : DATA.end;
    el("rect", {x: x(t), y: 20, width: Math.max(1, (until - t) * scale), height: 26, fill: "#fbd5d5"}, svg,
       desc + " (" + t + " - " + until + " ms)");
    const cut = new Set(); links.forEach(([a, b]) => { cut.add(a); });
    cut.forEach(n => el("rect", {x: x(t), y: y(n) - 4, width: Math.max(1, (until - t) * scale), height: ROW - 6,
      fill: "#fbd5d5", opacity: 0.5}, svg, desc));
  }
  el("text", {x: 4, y: 38, fill: "#555"}, svg).textContent = "net";
  // role bars
  const byNode = {};
  DATA.roles.forEach(r => (byNode[r[1]] = byNode[r[1]] || []).push(r));
  for (let n = 1; n <= DATA.nodes; n++) {
    el("text", {x: 4, y: y(n) + 18}, svg).textContent = "n" + n;
    const rs = byNode[n] || [];
    for (let i = 0; i < rs.length; i++) {
      const [t, , role, term] = rs[i];
      const until = i + 1 < rs.length ? rs[i + 1][0] : DATA.end;
      const w = Math.max(0.5, (until - t) * scale);
      el("rect", {x: x(t), y: y(n), width: w, height: 26, fill: COLORS[role] || "#ccc"}, svg,
         "n" + n + " " + role + " term " + term + " from " + t + " to " + until + " ms");
      if (w > 24 && role !== "Down") el("text", {x: x(t) + 2, y: y(n) + 17, fill: role === "Leader" ? "#fff" : "#333"}, svg).textContent = "t" + term;
    }
  }
  // marks
  DATA.marks.forEach(([t, n, text]) => {
    const yy = n === 0 ? 33 : y(n) + 34;
    el("path", {d: `M${x(t)},${yy - 6} l4,8 l-8,0 z`, fill: n === 0 ? "#b33" : "#b33"}, svg, t + " ms: " + text);
  });
  // messages
  if (document.getElementById("showmsgs").checked) {
    DATA.msgs.forEach(([s, r, a, b]) => {
      el("line", {x1: x(s), y1: y(a) + 13, x2: x(r), y2: y(b) + 13, stroke: "#2a6fdb", "stroke-width": 1, opacity: 0.6,
        "marker-end": "url(#arrow)"}, svg, DATA.kind + " n" + a + " -> n" + b + " sent " + s + " received " + r + " ms");
    });
  }
  const defs = el("defs", {}, svg);
  const m = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 5, markerHeight: 5, orient: "auto"}, defs);
  el("path", {d: "M0,0 L10,5 L0,10 z", fill: "#2a6fdb"}, m);
}
document.getElementById("zoom").addEventListener("input", draw);
document.getElementById("showmsgs").addEventListener("change", draw);
draw();
</script></body></html>
"##;
