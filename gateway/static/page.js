// The admin page's behaviour: token kept in sessionStorage, forms sent with fetch, answers
// and the DAG list written with textContent only (never as HTML).
"use strict";
(function () {
  const body = document.body;
  const apiUrl = body.dataset.apiUrl;
  const dagsUrl = body.dataset.dagsUrl;
  const tokenHeader = body.dataset.tokenHeader;
  const tokenField = document.getElementById("token");
  const STORE = "airflow-gateway-token";

  try { tokenField.value = sessionStorage.getItem(STORE) || ""; } catch (e) { /* storage disabled */ }
  tokenField.addEventListener("input", function () {
    try { sessionStorage.setItem(STORE, tokenField.value); } catch (e) { /* storage disabled */ }
  });

  function headers() {
    const h = {};
    if (tokenField.value) { h[tokenHeader] = tokenField.value; }
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
      await show(answer, await fetch(url, init));
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

  for (const form of document.querySelectorAll("form.call")) { form.addEventListener("submit", send); }
  document.getElementById("reload-dags").addEventListener("click", loadDags);
  loadDags();
})();
