//! The HTML page at `/`: reads, writes and deletes posts through the API the reader picks.
//!
//! The first list is rendered on the server (escaped here); everything the script adds later goes
//! through `textContent`, never `innerHTML`, so user content is never parsed as markup.

use crate::config::Config;
use crate::model::Post;

/// Escapes text for HTML element content and quoted attribute values.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn render_post(post: &Post) -> String {
    format!(
        "<article data-id=\"{id}\"><h2>{title}</h2><p class=\"meta\">by {author} · {created}</p><pre>{body}</pre></article>",
        id = escape_html(&post.id),
        title = escape_html(&post.title),
        author = escape_html(&post.author),
        created = escape_html(&post.created_at),
        body = escape_html(&post.body),
    )
}

/// The `Content-Security-Policy` of the page: its own inline script and style only (by hash), no
/// framing, no plugins, no form posts; `fetch` may reach any http(s) API, since the reader picks one.
#[must_use]
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let hash = |open: &str, close: &str| {
            let start = TEMPLATE.find(open).map_or(0, |i| i + open.len());
            let end = TEMPLATE[start..].find(close).map_or(start, |i| start + i);
            use base64::Engine as _;
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(&TEMPLATE.as_bytes()[start..end]);
            format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        };
        format!(
            "default-src 'none'; script-src {}; style-src {}; connect-src 'self' https: http:; img-src 'self'; \
             form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>")
        )
    });
    &POLICY
}

/// The whole page, with `posts` as the first list.
#[must_use]
pub fn render(config: &Config, posts: &[Post]) -> String {
    let url = |u: &Option<String>| escape_html(u.as_deref().unwrap_or(""));
    let list: String = posts.iter().map(render_post).collect();
    let readers = config.readers.as_ref();
    let candidates = readers.map(|r| r.candidates.join(",")).unwrap_or_default();
    let probe_url = readers.map(|r| r.probe_url.as_str()).unwrap_or_default();
    TEMPLATE
        .replace("{{functions_url}}", &url(&config.functions_url))
        .replace("{{containers_url}}", &url(&config.containers_url))
        .replace("{{candidates}}", &escape_html(&candidates))
        .replace("{{probe_url}}", &escape_html(probe_url))
        .replace("{{posts}}", &list)
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Blog</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
 fieldset { margin-bottom: 1rem; } input[type=text], input[type=url], input[type=password], textarea { width: 100%; box-sizing: border-box; }
 textarea { min-height: 8rem; } article { border-top: 1px solid #ccc; padding: .5rem 0; }
 .meta { color: #555; font-size: .9rem; } pre { white-space: pre-wrap; font-family: inherit; }
 #status { min-height: 1.5rem; color: #a00; }
 #chart text { font-size: 12px; } #chart .region { fill: #3a7d5c; } #chart .variant { fill: #3a5d9d; }
</style>
</head>
<body>
<h1>Blog</h1>
<fieldset id="api" data-functions-url="{{functions_url}}" data-containers-url="{{containers_url}}">
 <legend>API</legend>
 <label><input type="radio" name="api" value="same" checked> This server</label>
 <label><input type="radio" name="api" value="functions"> Functions URL</label>
 <label><input type="radio" name="api" value="containers"> Containers URL</label>
 <label><input type="radio" name="api" value="custom"> Other:</label>
 <input type="url" id="custom-url" placeholder="https://...">
 <p class="meta">Talking to: <span id="api-url"></span></p>
 <p class="meta" id="answered"></p>
 <label>Write token, for publishing and deleting (if the server needs one)
  <input type="password" id="token" autocomplete="off"></label>
</fieldset>
<form id="new-post">
 <fieldset><legend>Write a post</legend>
  <label>Title <input type="text" name="title" maxlength="200" required></label>
  <label>Author <input type="text" name="author" maxlength="100" required></label>
  <label>Body <textarea name="body" required></textarea></label>
  <button type="submit">Publish</button>
 </fieldset>
</form>
<p id="status" role="status"></p>
<section id="readers" data-candidates="{{candidates}}" data-probe-url="{{probe_url}}" hidden>
 <h2>From where you read</h2>
 <p class="meta">Your round trip, as this page measured it, to each region this blog may run in
 (green) and to each variant's API (blue). It is sent home as counts only, to place the blog near
 its readers.</p>
 <svg id="chart" role="img" aria-label="Round trips this page measured, in milliseconds" width="100%" height="0"></svg>
</section>
<section id="posts">{{posts}}</section>
<button id="more" hidden>Older posts</button>
<script>
"use strict";
const api = document.getElementById("api");
// "This server" is relative to the page, so a page served under a path prefix (a local Lambda
// function URL) reaches its own API.
const urls = { same: ".", functions: api.dataset.functionsUrl, containers: api.dataset.containersUrl };
for (const choice of ["functions", "containers"]) {
  if (!urls[choice]) api.querySelector(`input[value=${choice}]`).disabled = true;
}
let next = null;
function base() {
  const choice = api.querySelector("input[name=api]:checked").value;
  const url = choice === "custom" ? document.getElementById("custom-url").value : urls[choice];
  return (url || "").replace(/\/+$/, "");
}
function say(text) { document.getElementById("status").textContent = text; }
async function call(method, path, body) {
  const headers = {};
  const token = document.getElementById("token").value;
  if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const started = performance.now();
  const res = await fetch(base() + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const took = Math.round(performance.now() - started);
  document.getElementById("answered").textContent =
    method + " " + path.split("?")[0] + ": answered by " + (res.headers.get("x-blog-variant") || "an unknown server") + " in " + took + " ms";
  if (!res.ok) {
    let message = res.status + " " + res.statusText;
    try { const err = await res.json(); message = err.message || message; } catch (_) {}
    throw new Error(message);
  }
  return res.status === 204 ? null : res.json();
}
function postElement(post) {
  const article = document.createElement("article");
  const h2 = document.createElement("h2"); h2.textContent = post.title;
  const meta = document.createElement("p"); meta.className = "meta"; meta.textContent = "by " + post.author + " · " + post.createdAt;
  const body = document.createElement("pre"); body.textContent = post.body;
  const del = document.createElement("button"); del.textContent = "Delete";
  del.addEventListener("click", async () => {
    try { await call("DELETE", "/blogs/" + encodeURIComponent(post.id)); article.remove(); say(""); } catch (e) { say(e.message); }
  });
  article.append(h2, meta, body, del);
  return article;
}
async function load(more) {
  document.getElementById("api-url").textContent = new URL(base() || ".", location.href).href;
  try {
    const page = await call("GET", "/blogs?limit=20" + (more && next ? "&next=" + encodeURIComponent(next) : ""));
    const list = document.getElementById("posts");
    if (!more) list.replaceChildren();
    for (const post of page.items) list.append(postElement(post));
    next = page.next || null;
    document.getElementById("more").hidden = !next;
    say("");
  } catch (e) { say("Could not load posts: " + e.message); }
}
document.getElementById("new-post").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  try {
    await call("POST", "/blogs", { title: form.title.value, author: form.author.value, body: form.body.value });
    form.reset(); await load(false);
  } catch (e) { say("Could not publish: " + e.message); }
});
api.addEventListener("change", () => load(false));
document.getElementById("custom-url").addEventListener("change", () => load(false));
document.getElementById("more").addEventListener("click", () => load(true));
// The second of two requests reuses the connection: it times the round trip, not the handshakes.
async function timed(url, options) {
  try {
    await fetch(url, options);
    const started = performance.now();
    await fetch(url, options);
    return Math.max(1, Math.round(performance.now() - started));
  } catch (_) { return null; }
}
// A bar per measurement: regions first, then the variants.
function draw(bars) {
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  const row = 22, label = 120, width = 380;
  const max = Math.max(1, ...bars.map((bar) => bar.ms));
  svg.replaceChildren();
  svg.setAttribute("viewBox", "0 0 " + (label + width + 70) + " " + row * bars.length);
  svg.setAttribute("height", String(row * bars.length));
  bars.forEach((bar, i) => {
    const name = document.createElementNS(ns, "text");
    name.setAttribute("x", "0"); name.setAttribute("y", String(i * row + 15)); name.textContent = bar.name;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("class", bar.kind); rect.setAttribute("x", String(label)); rect.setAttribute("y", String(i * row + 3));
    rect.setAttribute("height", "16"); rect.setAttribute("width", String(Math.max(2, bar.ms / max * width)));
    rect.dataset.name = bar.name; rect.dataset.ms = String(bar.ms);
    const value = document.createElementNS(ns, "text");
    value.setAttribute("x", String(label + bar.ms / max * width + 6)); value.setAttribute("y", String(i * row + 15));
    value.textContent = bar.ms + " ms";
    svg.append(name, rect, value);
  });
  document.getElementById("readers").hidden = bars.length === 0;
}
// Times every candidate region and both variants, shows them, and sends them home; the page
// works the same when any of it is blocked.
async function measure() {
  const section = document.getElementById("readers");
  const candidates = (section.dataset.candidates || "").split(",").filter(Boolean);
  if (!candidates.length) return;
  const regions = [], variants = [];
  for (const region of candidates) {
    const url = new URL(section.dataset.probeUrl.split("{region}").join(region), location.href).href;
    const ms = await timed(url, { mode: "no-cors", cache: "no-store" });
    if (ms !== null) regions.push({ region, ms });
  }
  for (const variant of ["functions", "containers"]) {
    if (!urls[variant]) continue;
    const ms = await timed(urls[variant].replace(/\/+$/, "") + "/healthz", { cache: "no-store" });
    if (ms !== null) variants.push({ variant, ms });
  }
  draw(regions.map((r) => ({ name: r.region, ms: r.ms, kind: "region" }))
    .concat(variants.map((v) => ({ name: v.variant, ms: v.ms, kind: "variant" }))));
  if (!regions.length) return;
  const body = JSON.stringify({ regions, variants });
  fetch("./beacon", { method: "POST", headers: { "Content-Type": "application/json" }, body, keepalive: true })
    .catch(() => {});
}
load(false).then(measure);
</script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape_html(r#"<a href="x" onclick='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn urls_land_in_attributes_escaped() {
        let config = Config { functions_url: Some("https://f.example/\"><script>".into()), ..Config::default() };
        let html = render(&config, &[]);
        assert!(html.contains(r#"data-functions-url="https://f.example/&quot;&gt;&lt;script&gt;""#));
        assert!(!html.contains("{{"));
    }
}
