/** The dashboard's stylesheet, inlined in every page (no build step, nothing fetched). */
export const DASHBOARD_CSS = `
:root {
  --bg: #f6f7f9; --panel: #fff; --ink: #1d2330; --muted: #677084; --line: #e2e5eb; --accent: #3656d6;
  --pending: #8a93a6; --running: #2f6fdf; --suspended: #c98a00; --completed: #1f9d55; --failed: #d64545;
  --cancelled: #8e5bd0; --wait: #c7ccd6;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
h1 { font-size: 20px; margin: 0; }
h1 code { font-size: 18px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 8px; }
.top { display: flex; align-items: center; gap: 16px; padding: 10px 24px; background: #161b26; color: #c9cfdb; }
.top .brand { color: #fff; font-weight: 700; font-size: 16px; }
.top .backend { flex: 1; font-size: 12.5px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.top .nav { color: #c9cfdb; font-size: 13px; } .top .nav:hover { color: #fff; }
.status-active { background: var(--completed, #2f9e44); } .status-paused { background: var(--suspended, #d9a20b); }
.mode { font-size: 12px; padding: 2px 8px; border-radius: 10px; border: 1px solid #3a4256; }
.mode-actions { color: #ffd88a; border-color: #7a6330; }
.page { max-width: 1280px; margin: 0 auto; padding: 18px 24px 40px; }
.title-row { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; margin-bottom: 12px; }
.title-row h1 { flex: 1; min-width: 0; overflow-wrap: anywhere; }
.crumbs { margin-bottom: 8px; }
.filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 12px; align-items: center; }
.filters input[type=search] { flex: 1; min-width: 220px; }
input, select, button { font: inherit; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--ink); }
button { cursor: pointer; background: var(--accent); color: #fff; border-color: var(--accent); }
button.danger { background: var(--failed); border-color: var(--failed); }
button:disabled { opacity: .45; cursor: not-allowed; }
.clear { font-size: 13px; }
.counts { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 14px; }
.count { display: flex; gap: 8px; align-items: baseline; padding: 6px 12px; border-radius: 8px; background: var(--panel);
  border: 1px solid var(--line); color: var(--ink); }
.count b { font-size: 16px; }
.count.current { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent) inset; }
.count-failed b { color: var(--failed); } .count-completed b { color: var(--completed); }
.count-suspended b { color: var(--suspended); } .count-running b { color: var(--running); }
.count-cancelled b { color: var(--cancelled); } .count-pending b { color: var(--pending); } .count-continued b { color: var(--cancelled); }
table { width: 100%; border-collapse: collapse; background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th { text-align: left; font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
th, td { padding: 7px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
tr:last-child td { border-bottom: 0; }
.runs tbody tr:hover { background: #f3f6ff; }
.summary, .muted, .hint { color: var(--muted); font-size: 13px; }
.empty, .message { padding: 24px; background: var(--panel); border: 1px dashed var(--line); border-radius: 8px; color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.status-pending { background: var(--pending); } .status-running { background: var(--running); }
.status-suspended { background: var(--suspended); } .status-completed { background: var(--completed); }
.status-failed { background: var(--failed); } .status-cancelled { background: var(--cancelled); } .status-continued { background: var(--wait); color: #333; }
.live-dot { font-size: 12px; color: var(--running); }
.live-dot::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%; background: var(--running);
  margin-right: 4px; animation: pulse 1.2s infinite; }
@keyframes pulse { 50% { opacity: .25; } }
.idle-note { font-size: 12px; color: var(--muted); }
.actions { display: flex; gap: 8px; align-items: center; }
#flash:empty { display: none; }
#flash { padding: 8px 12px; border-radius: 6px; background: #eef3ff; border: 1px solid #c8d5ff; }
#flash.flash-error { background: #fff0f0; border-color: #f0b8b8; color: #8d1f1f; }
.facts { display: flex; flex-wrap: wrap; gap: 10px 28px; margin: 0 0 14px; padding: 12px 16px; background: var(--panel);
  border: 1px solid var(--line); border-radius: 8px; }
.facts dt { font-size: 12px; color: var(--muted); } .facts dd { margin: 0; }
.panels { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 14px; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 14px; }
.panel pre { max-height: 320px; overflow: auto; }
.panel-error { border-color: #f0b8b8; }
.error-line { margin: 0 0 6px; color: #8d1f1f; }
.stack { color: var(--muted); background: #fbf6f6; padding: 8px; border-radius: 6px; }
.timeline { display: flex; flex-direction: column; gap: 4px; }
.tl-row { display: grid; grid-template-columns: 260px 1fr; gap: 12px; align-items: center; }
.tl-label { display: flex; gap: 6px; align-items: baseline; overflow: hidden; white-space: nowrap; }
.tl-name { font-weight: 600; } .tl-label code { color: var(--muted); font-size: 11.5px; }
.tl-attempts { font-size: 11.5px; color: var(--suspended); } .tl-timing { font-size: 11.5px; color: var(--muted, #6b7280); }
.tl-track { position: relative; height: 22px; background: repeating-linear-gradient(90deg, #f1f3f6 0 1px, transparent 1px 20%); border-radius: 4px; }
.tl-axis .tl-track { height: 18px; background: none; border-bottom: 1px solid var(--line); }
.tick { position: absolute; top: 0; font-size: 11px; color: var(--muted); transform: translateX(-2px); white-space: nowrap; }
.bar { position: absolute; top: 3px; height: 16px; border-radius: 3px; overflow: hidden; min-width: 3px; }
.bar span { display: block; padding: 0 5px; font-size: 10.5px; line-height: 16px; color: #fff; white-space: nowrap; }
.bar-completed { background: var(--completed); } .bar-running { background: var(--running); }
.bar-failed { background: var(--failed); } .bar-retrying { background: #e8892b; }
.bar-retry-wait { background: repeating-linear-gradient(45deg, var(--wait) 0 4px, #e4e7ed 4px 8px); }
.bar-retry-wait span, .bar-sleeping span { color: var(--ink); }
.bar-sleeping { background: repeating-linear-gradient(45deg, #f6d98a 0 6px, #fbe9b8 6px 12px); }
.bar-slept { background: #e3b94a; } .bar-abandoned { background: var(--pending); }
.bar-waiting { background: repeating-linear-gradient(45deg, #b9cdf5 0 6px, #dbe6fb 6px 12px); }
.bar-waiting span { color: var(--ink); }
.bar-received { background: #3f8fb5; } .bar-timed-out { background: var(--failed); }
.bar-open { border-right: 2px dashed rgba(0,0,0,.35); }
.legend { display: flex; gap: 14px; flex-wrap: wrap; margin: 10px 0 0; font-size: 12px; color: var(--muted); }
.legend-item i { display: inline-block; width: 14px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
.events td:first-child { color: var(--muted); width: 36px; }
.events summary { cursor: pointer; overflow-wrap: anywhere; }
.events pre { margin-top: 6px; background: #f7f8fa; padding: 8px; border-radius: 6px; }
.event-type { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.tone-ok { color: var(--completed); } .tone-bad { color: var(--failed); } .tone-warn { color: #b86e00; }
@media (max-width: 760px) { .tl-row { grid-template-columns: 130px 1fr; } .page { padding: 12px; } }
`;

/**
 * The dashboard's only script, inlined: refreshes the live part of the page while a run is active (and
 * the runs list always), keeps open event details open, and sends the cancel and retry buttons' requests.
 */
export const DASHBOARD_SCRIPT = `
(() => {
  const body = document.body;
  const token = body.dataset.token || "";
  const base = body.dataset.base || "";
  const auth = token ? { Authorization: "Bearer " + token } : {};
  const every = Number(body.dataset.refreshMs) || 1500;
  let timer;

  function sync() {
    const live = document.getElementById("live");
    if (!live) return;
    for (const button of document.querySelectorAll("button[data-action]")) {
      const allowed = live.dataset["can" + (button.dataset.action === "cancel" ? "Cancel" : "Retry")] === "1";
      button.disabled = !allowed;
    }
    const reason = document.getElementById("cancel-reason");
    if (reason) reason.disabled = live.dataset.canCancel !== "1";
  }

  async function refresh() {
    const current = document.getElementById("live");
    if (!current) return;
    try {
      const response = await fetch(location.href, {
        headers: { ...auth, "X-Tsworkflow-Fragment": "live" },
        cache: "no-store",
      });
      if (!response.ok) return;
      const template = document.createElement("template");
      template.innerHTML = await response.text();
      const next = template.content.getElementById("live");
      if (!next) return;
      const open = [...current.querySelectorAll("details[open][id]")].map((details) => details.id);
      current.replaceWith(next);
      for (const id of open) document.getElementById(id)?.setAttribute("open", "");
      sync();
    } catch {
      // The server may be restarting: try again on the next tick.
    }
  }

  function schedule() {
    clearTimeout(timer);
    const live = document.getElementById("live");
    if (!live || live.dataset.live !== "1") return;
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, Number(live.dataset.every) || every);
  }

  function flash(text, isError) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = isError ? "flash-error" : "";
  }

  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button[data-action]") : null;
    if (!button || button.disabled) return;
    const action = button.dataset.action;
    const runId = button.dataset.runId;
    if (action === "cancel" && !confirm("Cancel run " + runId + "? Its remaining steps and sleeps will not run.")) return;
    const reason = document.getElementById("cancel-reason")?.value || undefined;
    button.disabled = true;
    flash(action === "cancel" ? "Cancelling…" : "Retrying…", false);
    try {
      const response = await fetch(base + "/api/runs/" + encodeURIComponent(runId) + "/" + action, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify(action === "cancel" && reason ? { reason } : {}),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) flash(answer.error || response.statusText, true);
      else flash(answer.message || "Done.", false);
    } catch (error) {
      flash(String(error), true);
    }
    await refresh();
    schedule();
  });

  for (const select of document.querySelectorAll("#filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
  sync();
  schedule();
})();
`;
