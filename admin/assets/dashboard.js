// The distcache dashboard: polls {base}/cluster, keeps the last minutes of
// samples, and derives rates from the cumulative counters (a member whose
// counters went down restarted: that interval has no rate).
(function () {
  "use strict";

  var body = document.body;
  var base = body.dataset.base || "";
  var intervalMs = Number(body.dataset.intervalMs) || 2000;
  var windowSec = 300;
  var maxPoints = Math.ceil((windowSec * 1000) / intervalMs) + 1;
  var palette = ["#4c8bf5", "#e8710a", "#1a7f37", "#cf222e", "#8250df", "#0a7ea4", "#bf8700", "#6e7781"];

  // state is exposed for tests and for poking at from the console.
  var state = {
    polls: 0,
    prev: null, // {t, members: {name: totals}}
    times: [], // seconds
    series: { ops: {}, fetches: {}, p99: {}, ratio: { cluster: [] } },
    names: [],
    charts: {},
    last: null // the latest /cluster body
  };
  window.distcacheDashboard = state;

  // Go's time.Duration String form ("1.5ms", "2m3s", "0s") in seconds.
  function parseDuration(s) {
    if (typeof s === "number") return s / 1e9;
    if (!s) return 0;
    var units = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, "\u00b5s": 1e-6, ns: 1e-9 };
    var re = /([0-9.]+)(ns|us|\u00b5s|ms|s|m|h)/g;
    var total = 0, m;
    while ((m = re.exec(s)) !== null) total += parseFloat(m[1]) * units[m[2]];
    return s.charAt(0) === "-" ? -total : total;
  }

  // DataSource avoided: 1 − fetches ÷ gets, the one hit ratio (see
  // admin.DataSourceAvoided); null without gets.
  function avoided(gets, fetches) {
    return gets > 0 ? Math.max(0, 1 - fetches / gets) : null;
  }

  function totals(m) {
    var t = { entries: 0, bytes: 0, gets: 0, calls: 0, fetches: 0, forwarded: 0, degraded: 0,
      near: 0, handedOff: 0, handoffsTaken: 0, p99: 0 };
    (m.keyspaces || []).forEach(function (ks) {
      t.entries += ks.entries || 0;
      t.bytes += ks.main_cache_bytes || 0;
      var s = ks.stats;
      if (!s) return;
      t.gets += s.gets;
      t.calls += Math.max(s.gets - s.server_requests, 0);
      t.fetches += s.fetches;
      t.forwarded += s.forwarded;
      t.degraded += s.degraded;
      t.near += s.near_hits;
      t.handedOff += s.handed_off || 0;
      t.handoffsTaken += s.handoffs_taken || 0;
      t.p99 = Math.max(t.p99, parseDuration(s.get_p99));
    });
    return t;
  }

  function fmtInt(n) { return Math.round(n).toLocaleString("en-US"); }
  function fmtRate(n) { return n === null || n === undefined ? "-" : n >= 100 ? fmtInt(n) : n.toFixed(1); }
  function fmtPct(r) { return r === null || r === undefined ? "-" : (100 * r).toFixed(1) + "%"; }
  function fmtBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? n + " B" : n.toFixed(1) + " " + units[i];
  }
  function fmtDur(sec) {
    if (!sec) return "-";
    if (sec < 1e-3) return (sec * 1e6).toFixed(0) + " \u00b5s";
    if (sec < 1) return (sec * 1e3).toFixed(2) + " ms";
    return sec.toFixed(2) + " s";
  }
  function setText(id, text) { document.getElementById(id).textContent = text; }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (cls) td.className = cls;
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function replaceRows(tableId, rows) {
    var tbody = document.querySelector("#" + tableId + " tbody");
    tbody.replaceChildren.apply(tbody, rows);
  }
  // Only http(s) links: the URL comes from another member's reply.
  function safeURL(u) { return typeof u === "string" && /^https?:\/\//.test(u) ? u : ""; }

  // record appends one sample to every series (null where there is no
  // rate: first sample, member absent or restarted).
  function record(view) {
    var now = Date.now() / 1000;
    var cur = {};
    view.members.forEach(function (m) { if (m.reachable) cur[m.name] = totals(m); });
    var prev = state.prev;
    var dt = prev ? now - prev.t : 0;
    var sum = { calls: 0, fetches: 0 };
    view.members.forEach(function (m) {
      if (state.names.indexOf(m.name) < 0) {
        state.names.push(m.name);
        ["ops", "fetches", "p99"].forEach(function (k) {
          state.series[k][m.name] = state.times.map(function () { return null; });
        });
      }
    });
    state.times.push(now);
    state.names.forEach(function (name) {
      var c = cur[name], p = prev && prev.members[name];
      var ok = c && p && dt > 0 && c.calls >= p.calls && c.fetches >= p.fetches;
      state.series.ops[name].push(ok ? (c.calls - p.calls) / dt : null);
      state.series.fetches[name].push(ok ? (c.fetches - p.fetches) / dt : null);
      state.series.p99[name].push(c ? c.p99 * 1e3 : null);
      if (ok) {
        sum.calls += c.calls - p.calls;
        sum.fetches += c.fetches - p.fetches;
      }
    });
    var ratio = prev ? avoided(sum.calls, sum.fetches) : null;
    state.series.ratio.cluster.push(ratio === null ? null : 100 * ratio);
    if (state.times.length > maxPoints) {
      state.times.shift();
      ["ops", "fetches", "p99"].forEach(function (k) {
        state.names.forEach(function (n) { state.series[k][n].shift(); });
      });
      state.series.ratio.cluster.shift();
    }
    state.prev = { t: now, members: cur };
    return { ops: prev ? sum.calls / dt : null, fetches: prev ? sum.fetches / dt : null, ratio: ratio };
  }

  function chartOpts(el, names, yLabel, range) {
    return {
      width: Math.max(el.clientWidth, 300),
      height: 200,
      scales: { x: { time: true }, y: range ? { range: range } : { auto: true } },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}].concat(names.map(function (n, i) {
        return { label: n, stroke: palette[i % palette.length], width: 1.5, spanGaps: false };
      }))
    };
  }

  // drawCharts builds the charts (again when the member set changed) and
  // hands them the current window.
  function drawCharts() {
    if (typeof uPlot === "undefined") {
      setText("status", "the charting script did not load");
      return;
    }
    var specs = [
      { id: "chart-ops", key: "ops", names: state.names, y: "Gets/s" },
      { id: "chart-ratio", key: "ratio", names: ["cluster"], y: "%", range: [0, 100] },
      { id: "chart-fetches", key: "fetches", names: state.names, y: "fetches/s" },
      { id: "chart-p99", key: "p99", names: state.names, y: "ms" }
    ];
    specs.forEach(function (spec) {
      var data = [state.times.slice()].concat(spec.names.map(function (n) {
        return state.series[spec.key][n].slice();
      }));
      var ch = state.charts[spec.key];
      var sig = spec.names.join("\u0000");
      if (!ch || ch.sig !== sig) {
        var el = document.getElementById(spec.id);
        if (ch) ch.plot.destroy();
        el.replaceChildren();
        ch = { sig: sig, plot: new uPlot(chartOpts(el, spec.names, spec.y, spec.range), data, el) };
        state.charts[spec.key] = ch;
      } else {
        ch.plot.setData(data);
      }
    });
  }

  function renderMembers(view) {
    var partitions = view.members.reduce(function (n, m) { return n + m.partitions; }, 0);
    var rows = view.members.map(function (m) {
      var t = totals(m);
      var tr = document.createElement("tr");
      tr.dataset.member = m.name;
      var name = document.createTextNode(m.name), url = safeURL(m.admin_url);
      if (url) {
        name = document.createElement("a");
        name.href = url;
        name.textContent = m.name;
      }
      var first = cell(tr, name);
      if (m.is_self) first.appendChild(document.createTextNode(" (this node)"));
      cell(tr, m.addr);
      var st = cell(tr, m.reachable ? "ok" : "unreachable", m.reachable ? "ok" : "bad");
      if (m.error) st.title = m.error;
      var bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (partitions > 0 ? Math.round((80 * m.partitions) / partitions) : 0) + "px";
      var parts = document.createElement("span");
      parts.appendChild(bar);
      parts.appendChild(document.createTextNode(String(m.partitions)));
      cell(tr, parts);
      if (!m.reachable) {
        cell(tr, m.error || "", "bad").colSpan = 9;
        return tr;
      }
      cell(tr, fmtInt(t.entries));
      cell(tr, fmtInt(t.gets));
      cell(tr, fmtPct(avoided(t.gets, t.fetches)));
      cell(tr, fmtInt(t.fetches));
      cell(tr, fmtInt(t.forwarded));
      cell(tr, fmtInt(t.degraded));
      cell(tr, fmtInt(t.near));
      cell(tr, fmtInt(t.handedOff) + " / " + fmtInt(t.handoffsTaken));
      cell(tr, fmtDur(t.p99));
      return tr;
    });
    replaceRows("members", rows);
  }

  function renderKeySpaces(view) {
    var byName = {};
    view.members.forEach(function (m) {
      if (!m.reachable) return;
      (m.keyspaces || []).forEach(function (ks) {
        var a = byName[ks.name] || (byName[ks.name] = { entries: 0, bytes: 0, calls: 0, fetches: 0,
          fetchErrors: 0, forwarded: 0, near: 0, stale: 0, warmLoaded: 0, warmRequested: 0 });
        a.entries += ks.entries || 0;
        if (ks.warmup) {
          a.warmLoaded += ks.warmup.loaded;
          a.warmRequested += ks.warmup.requested;
        }
        a.bytes += ks.main_cache_bytes || 0;
        var s = ks.stats;
        if (!s) return;
        a.calls += Math.max(s.gets - s.server_requests, 0);
        a.fetches += s.fetches;
        a.fetchErrors += s.fetch_errors;
        a.forwarded += s.forwarded;
        a.near += s.near_hits;
        a.stale += s.stale_served;
      });
    });
    replaceRows("keyspaces", Object.keys(byName).sort().map(function (name) {
      var a = byName[name], tr = document.createElement("tr");
      cell(tr, name);
      cell(tr, fmtInt(a.entries));
      cell(tr, fmtBytes(a.bytes));
      cell(tr, fmtInt(a.calls));
      cell(tr, fmtPct(avoided(a.calls, a.fetches)));
      cell(tr, fmtInt(a.fetches));
      cell(tr, fmtInt(a.fetchErrors));
      cell(tr, fmtInt(a.forwarded));
      cell(tr, fmtInt(a.near));
      cell(tr, fmtInt(a.stale));
      cell(tr, fmtInt(a.warmLoaded) + " / " + fmtInt(a.warmRequested));
      return tr;
    }));
  }

  function renderHotKeys(view) {
    var hot = [];
    view.members.forEach(function (m) {
      (m.keyspaces || []).forEach(function (ks) {
        (ks.hot_keys || []).forEach(function (h) {
          hot.push({ member: m.name, ks: ks.name, key: h.key, hits: h.hits });
        });
      });
    });
    hot.sort(function (a, b) { return b.hits - a.hits; });
    replaceRows("hotkeys", hot.slice(0, 40).map(function (h) {
      var tr = document.createElement("tr");
      cell(tr, h.member);
      cell(tr, h.ks);
      cell(tr, h.key, "key");
      cell(tr, fmtInt(h.hits));
      return tr;
    }));
  }

  function render(view, rates) {
    var reachable = view.members.filter(function (m) { return m.reachable; }).length;
    setText("sum-members", reachable + " / " + view.members.length);
    setText("sum-ops", fmtRate(rates.ops));
    setText("sum-ratio", fmtPct(rates.ratio));
    setText("sum-fetches", fmtRate(rates.fetches));
    setText("sum-gets", fmtInt(view.gets));
    setText("sum-updated", new Date().toLocaleTimeString());
    renderMembers(view);
    renderKeySpaces(view);
    renderHotKeys(view);
    drawCharts();
  }

  function poll() {
    fetch(base + "/cluster", { cache: "no-store", credentials: "same-origin" })
      .then(function (resp) {
        if (resp.status === 401) throw new Error("401: this page needs the admin bearer token (see admin.Config.BearerToken)");
        if (!resp.ok) throw new Error("GET " + base + "/cluster: HTTP " + resp.status);
        return resp.json();
      })
      .then(function (view) {
        view.members = view.members || [];
        state.last = view;
        var rates = record(view);
        render(view, rates);
        setText("status", "");
      })
      .catch(function (err) { setText("status", String(err.message || err)); })
      .then(function () {
        state.polls++;
        body.dataset.polls = String(state.polls);
        setTimeout(poll, intervalMs);
      });
  }

  window.addEventListener("resize", function () {
    Object.keys(state.charts).forEach(function (k) {
      var p = state.charts[k].plot;
      p.setSize({ width: Math.max(p.root.parentNode.clientWidth, 300), height: 200 });
    });
  });
  poll();
})();
