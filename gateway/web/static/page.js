// The admin page's behaviour: token kept in sessionStorage (or the sign-on session and its
// CSRF token), forms sent with fetch, answers and the DAG list written with textContent only (never as HTML).
"use strict";
(function () {
  const body = document.body;
  const apiUrl = body.dataset.apiUrl;
  const dagsUrl = body.dataset.dagsUrl;
  const jobsUrl = body.dataset.jobsUrl;
  const tokenHeader = body.dataset.tokenHeader;
  const tokenField = document.getElementById("token");
  const STORE = "airflow-gateway-token";
  // Signed in (sign-on): the session cookie authenticates, and every call carries the
  // session's CSRF token, which the gateway requires with the cookie.
  const session = document.getElementById("session");
  const csrfToken = session ? session.dataset.csrfToken : "";

  if (tokenField) {
    try { tokenField.value = sessionStorage.getItem(STORE) || ""; } catch (e) { /* storage disabled */ }
    tokenField.addEventListener("input", function () {
      try { sessionStorage.setItem(STORE, tokenField.value); } catch (e) { /* storage disabled */ }
    });
  }

  function headers() {
    const h = {};
    if (tokenField && tokenField.value) { h[tokenHeader] = tokenField.value; }
    if (csrfToken) { h["X-CSRF-Token"] = csrfToken; }
    return h;
  }

  async function show(target, response) {
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: show as is */ }
    target.textContent = "HTTP " + response.status + "\n" + shown;
    target.dataset.status = String(response.status);
  }

  function fields(form) {
    // Empty fields mean "not given", as in the API itself.
    const data = new FormData(form);
    for (const [name, value] of Array.from(data.entries())) {
      if (value === "" || (value instanceof File && value.name === "" && value.size === 0)) {
        data.delete(name);
      }
    }
    return data;
  }

  async function send(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const section = form.closest("section");
    const answer = section.querySelector("pre.answer");
    const chosen = section.querySelector("input.method-choice:checked, .methods input:checked");
    const method = chosen ? chosen.value : "GET";
    const data = fields(form);
    const asJob = section.querySelector("input.as-job");
    if (asJob && asJob.checked) { data.set("mode", "job"); }
    const multipart = form.enctype === "multipart/form-data";
    let url = apiUrl;
    const init = { method: method, headers: headers(), credentials: "same-origin" };
    if (method === "GET") {
      url += "?" + new URLSearchParams(data).toString();
    } else if (multipart) {
      init.body = data;
    } else {
      init.body = new URLSearchParams(data);
    }
    answer.textContent = "sending...";
    delete answer.dataset.status;
    try {
      const response = await fetch(url, init);
      if (response.status === 202 && data.get("mode") === "job") {
        const accepted = await response.json();
        answer.textContent = "";
        watchJob(accepted.job, section);
        loadJobs();
      } else {
        await show(answer, response);
      }
    } catch (e) {
      answer.textContent = "request failed: " + e;
    }
    if (form.dataset.api === "deploy_dag" || form.dataset.api === "refresh_all_dags") { loadDags(); }
  }

  async function loadDags() {
    const list = document.getElementById("dags");
    const status = document.getElementById("dags-status");
    status.textContent = "loading...";
    try {
      const response = await fetch(dagsUrl, { headers: headers(), credentials: "same-origin" });
      const answer = await response.json();
      list.replaceChildren();
      if (!response.ok) {
        status.textContent = "HTTP " + response.status + ": " + String(answer.output);
        return;
      }
      for (const dag of answer.data) {
        const item = document.createElement("li");
        item.textContent = dag.dag_id + (dag.is_paused === "True" || dag.is_paused === true ? " (paused)" : "");
        list.appendChild(item);
      }
      status.textContent = answer.data.length + " DAG(s)";
    } catch (e) {
      status.textContent = "could not load the DAG list: " + e;
    }
  }

  // --- jobs: live output (SSE read with fetch, so the token header can be sent), cancel ---

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function elapsed(job) {
    const start = job.started_at || job.created_at;
    const end = job.finished_at || Date.now() / 1000;
    return Math.max(0, end - start).toFixed(1) + " s";
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  // One panel per job: state, elapsed time, cancel button, live output, final envelope.
  function watchJob(job, section) {
    const old = section.querySelector("div.job");
    if (old) { old.remove(); }
    const panel = element("div", "job");
    panel.dataset.jobId = job.job_id;
    const head = element("p", "job-head");
    const state = element("span", "job-state", job.state);
    const clock = element("span", "job-elapsed", elapsed(job));
    const cancel = element("button", "job-cancel", "Cancel");
    cancel.type = "button";
    head.append("job " + job.job_id + " · ", state, " · ", clock, " ", cancel);
    const output = element("pre", "job-output");
    const result = section.querySelector("pre.answer");
    result.textContent = "";
    delete result.dataset.status;
    panel.append(head, output);
    result.before(panel);
    let current = job;
    const timer = setInterval(function () { clock.textContent = elapsed(current); }, 500);

    async function refresh() {
      const response = await fetch(jobsUrl + "/" + job.job_id, { headers: headers(), credentials: "same-origin" });
      if (!response.ok) { return; }
      current = await response.json();
      state.textContent = current.state;
      panel.dataset.state = current.state;
      if (current.envelope) {
        // The same answer a synchronous call would have shown.
        result.textContent = "HTTP " + current.envelope.http_response_code + "\n" +
          JSON.stringify(current.envelope, null, 2);
        result.dataset.status = String(current.envelope.http_response_code);
        cancel.disabled = true;
        clearInterval(timer);
        clock.textContent = elapsed(current);
      }
    }

    cancel.addEventListener("click", async function () {
      cancel.disabled = true;
      const response = await fetch(jobsUrl + "/" + job.job_id, {
        method: "DELETE", headers: headers(), credentials: "same-origin",
      });
      state.textContent = response.status === 202 ? "cancelling..." : "HTTP " + response.status;
    });

    async function follow() {
      let last = null;
      let ended = false;
      while (!ended && panel.isConnected) {
        const h = headers();
        h.Accept = "text/event-stream";
        if (last !== null) { h["Last-Event-ID"] = last; }
        try {
          const response = await fetch(jobsUrl + "/" + job.job_id + "/output", { headers: h, credentials: "same-origin" });
          if (!response.ok) { state.textContent = "HTTP " + response.status; return; }
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = "";
          for (;;) {
            const chunk = await reader.read();
            if (chunk.done) { break; }
            buffer += decoder.decode(chunk.value, { stream: true });
            let cut;
            while ((cut = buffer.indexOf("\n\n")) >= 0) {
              const block = buffer.slice(0, cut);
              buffer = buffer.slice(cut + 2);
              let name = "message", id = null, data = "";
              for (const line of block.split("\n")) {
                if (line.startsWith("event: ")) { name = line.slice(7); }
                else if (line.startsWith("id: ")) { id = line.slice(4); }
                else if (line.startsWith("data: ")) { data += line.slice(6); }
              }
              if (name === "output") {
                output.append(document.createTextNode(JSON.parse(data).text));
                last = id;
                output.scrollTop = output.scrollHeight;
              } else if (name === "end") {
                ended = true;
              }
            }
            if (state.textContent === "queued") { refresh(); }
          }
        } catch (e) {
          await sleep(1000);
        }
      }
      await refresh();
      loadJobs();
    }

    panel.dataset.state = job.state;
    refresh();
    follow();
  }

  async function loadJobs() {
    const list = document.getElementById("jobs");
    const status = document.getElementById("jobs-status");
    try {
      const response = await fetch(jobsUrl + "?limit=20", { headers: headers(), credentials: "same-origin" });
      const answer = await response.json();
      list.replaceChildren();
      if (!response.ok) { status.textContent = "HTTP " + response.status + ": " + String(answer.output); return; }
      for (const job of answer.jobs) {
        const item = element("li", "job-item");
        const link = element("a", "", job.api + " · " + job.state + " · " + elapsed(job));
        link.href = "#api-" + job.api;
        link.addEventListener("click", function () {
          const section = document.getElementById("api-" + job.api);
          if (section) { watchJob(job, section); }
        });
        item.appendChild(link);
        list.appendChild(item);
      }
      status.textContent = answer.jobs.length + " job(s)";
    } catch (e) {
      status.textContent = "could not load the jobs: " + e;
    }
  }

  for (const form of document.querySelectorAll("form.call")) { form.addEventListener("submit", send); }
  document.getElementById("reload-dags").addEventListener("click", loadDags);
  document.getElementById("reload-jobs").addEventListener("click", loadJobs);
  loadDags();
  loadJobs();
})();
