// asyncflow's dashboard: plain EventSource, no framework, no network beyond this server.
"use strict";
(function () {
  const body = document.body;
  const base = body.dataset.base || "";

  // Times in the viewer's own zone.
  for (const t of document.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) { t.textContent = d.toLocaleString(); t.title = t.getAttribute("datetime"); }
  }

  function setState(el, state) {
    for (const c of Array.from(el.classList)) if (c.startsWith("s-")) el.classList.remove(c);
    el.classList.add("s-" + state);
    el.dataset.state = state;
    if (el.classList.contains("badge")) el.textContent = state;
    if (el.title) el.title = el.title.replace(/: [a-z_]+$/, ": " + state);
  }

  function sel(attrs) {
    return Object.entries(attrs).map(([k, v]) => `[data-${k}="${CSS.escape(v)}"]`).join("");
  }

  let reloading = false;
  function reloadSoon() {
    if (reloading) return;
    reloading = true;
    setTimeout(() => location.reload(), 300);
  }

  function listen(params, handlers) {
    const q = new URLSearchParams(params);
    if (body.dataset.lastEventId) q.set("last_event_id", body.dataset.lastEventId);
    const source = new EventSource(`${base}/api/v2/events?${q}`);
    const status = document.getElementById("live-status");
    source.onopen = () => { if (status) status.textContent = "live"; body.dataset.sse = "open"; };
    source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
    source.addEventListener("task_state", (e) => handlers.task && handlers.task(JSON.parse(e.data)));
    source.addEventListener("dag_run_state", (e) => handlers.run && handlers.run(JSON.parse(e.data)));
    source.addEventListener("resync", () => { source.close(); reloadSoon(); });
    return source;
  }

  const live = body.dataset.live;
  if (live === "grid") {
    listen({ dag_id: body.dataset.dag }, {
      task(ev) {
        for (const el of document.querySelectorAll(".cell" + sel({ run: ev.dag_run_id, task: ev.task_id })))
          setState(el, ev.new_state);
      },
      run(ev) {
        const marks = document.querySelectorAll(".mark" + sel({ run: ev.dag_run_id }));
        if (marks.length === 0 && ev.old_state === null && body.dataset.firstPage === "true") reloadSoon();
        for (const el of marks) setState(el, ev.new_state);
      },
    });
    gridKeys();
  } else if (live === "run") {
    listen({ dag_id: body.dataset.dag, dag_run_id: body.dataset.run }, {
      task(ev) {
        for (const el of document.querySelectorAll(".badge" + sel({ task: ev.task_id }))) setState(el, ev.new_state);
        recount();
      },
      run(ev) { for (const el of document.querySelectorAll(".badge[data-kind=run]")) setState(el, ev.new_state); },
    });
  } else if (live === "dags") {
    listen({}, {
      run(ev) {
        const row = document.querySelector("tr" + sel({ dag: ev.dag_id }));
        if (!row) return;
        const marks = row.querySelectorAll(".mark" + sel({ run: ev.dag_run_id }));
        if (marks.length === 0) reloadSoon();
        for (const el of marks) setState(el, ev.new_state);
      },
    });
  } else if (live === "graph" && body.dataset.run) {
    listen({ dag_id: body.dataset.dag, dag_run_id: body.dataset.run }, {
      task(ev) {
        for (const el of document.querySelectorAll(".gnode" + sel({ task: ev.task_id }))) {
          setState(el, ev.new_state);
          const title = el.querySelector("title");
          if (title) title.textContent = ev.task_id + ": " + ev.new_state;
        }
      },
    });
  } else if (live === "log") {
    followLog(body.dataset.logUrl);
  }

  function recount() {
    const finished = ["success", "failed", "skipped", "upstream_failed", "removed"];
    const counts = {};
    let done = 0, total = 0;
    for (const el of document.querySelectorAll("#tis .badge[data-task]")) {
      counts[el.dataset.state] = (counts[el.dataset.state] || 0) + 1;
      total += 1;
      if (finished.includes(el.dataset.state)) done += 1;
    }
    const list = document.getElementById("counts");
    list.replaceChildren(...Object.keys(counts).sort().map((s) => {
      const li = document.createElement("li");
      const mark = document.createElement("span");
      mark.className = "mark s-" + s;
      li.append(mark, `${s}: ${counts[s]}`);
      return li;
    }));
    document.getElementById("progress").value = done;
    document.getElementById("progress-text").textContent = `${done} / ${total} finished`;
  }

  // The log follows while the reader is at the bottom; scrolling up stops following.
  async function followLog(url) {
    const pre = document.getElementById("log");
    const status = document.getElementById("log-status");
    let token = "0";
    let follow = true;
    const atBottom = () => pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.addEventListener("scroll", () => { follow = atBottom(); });
    for (;;) {
      let data;
      try {
        const r = await fetch(`${url}?token=${token}&follow=true&wait=10`, { credentials: "same-origin" });
        if (!r.ok) { status.textContent = `no log (${r.status})`; return; }
        data = await r.json();
      } catch (err) {
        status.textContent = "connection lost; retrying…";
        await new Promise((ok) => setTimeout(ok, 2000));
        continue;
      }
      if (data.content) {
        pre.append(document.createTextNode(data.content));
        if (follow) pre.scrollTop = pre.scrollHeight;
      }
      token = data.continuation_token;
      if (data.end_of_log) {
        status.textContent = pre.textContent ? "end of log" : "this try wrote no log";
        pre.dataset.complete = "true";
        return;
      }
      status.textContent = "following…";
    }
  }

  // Arrow keys move between grid cells.
  function gridKeys() {
    const grid = document.getElementById("grid");
    if (!grid) return;
    grid.addEventListener("keydown", (e) => {
      const cell = e.target.closest("td");
      if (!cell) return;
      const row = cell.parentElement;
      let target = null;
      if (e.key === "ArrowRight") target = cell.nextElementSibling;
      else if (e.key === "ArrowLeft") target = cell.previousElementSibling;
      else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
        const other = e.key === "ArrowUp" ? row.previousElementSibling : row.nextElementSibling;
        if (other) target = other.children[cell.cellIndex];
      }
      const link = target && target.querySelector("a");
      if (link) { link.focus(); e.preventDefault(); }
    });
  }
})();
