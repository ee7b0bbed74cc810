// The CRM dashboard: every analytics report for the chosen range, period, team and moment,
// as ECharts charts, key figures and tables. The token and filters come from the URL
// fragment (#token=...&from=yyyy-MM-dd&to=...&group_by=month&team=...&as_of=...), so a link
// opens the same view; the token never reaches server logs. Numbers shown are the API's.
'use strict';

const state = { token: '', charts: {} };

// ---- Formatting: amounts are minor units (fen) in the API ----
const int = (v) => Number(v || 0);
const money = (minor) => {
  const n = int(minor);
  const sign = n < 0 ? '-' : '';
  const a = Math.abs(n);
  const yuan = Math.floor(a / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${sign}¥${yuan}.${String(a % 100).padStart(2, '0')}`;
};
const pct = (v) => `${Number(v || 0).toFixed(1)}%`;
const day = (ts) => (ts ? new Date(Date.parse(ts) + 8 * 3600e3).toISOString().slice(0, 10) : '');
const channelName = {
  WEBSITE: '官网', ECOMMERCE: '电商', STORE: '门店', EXHIBITION: '展会', REFERRAL: '转介绍',
  ONLINE_ADS: '线上推广', COLD_VISIT: '陌生拜访', SOCIAL_MEDIA: '社交媒体', OTHER: '其他', UNSPECIFIED: '未填写',
};

// ---- Filters from and to the fragment ----
function params() {
  const p = new URLSearchParams(location.hash.slice(1));
  const today = new Date(Date.now() + 8 * 3600e3);
  const iso = (d) => d.toISOString().slice(0, 10);
  const start = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - 5, 1));
  const end = new Date(today.getTime() + 24 * 3600e3);
  return {
    token: p.get('token') || sessionStorage.getItem('crm-token') || '',
    from: p.get('from') || iso(start),
    to: p.get('to') || iso(end),
    group_by: p.get('group_by') || 'month',
    team: p.get('team') || '',
    as_of: p.get('as_of') || '',
  };
}

function query(f) {
  const q = new URLSearchParams({ from: f.from, to: f.to, group_by: f.group_by });
  if (f.team) { q.set('team', f.team); }
  if (f.as_of) { q.set('as_of', new Date(f.as_of.length <= 19 ? `${f.as_of}+08:00` : f.as_of).toISOString()); }
  return q;
}

async function api(report, f, extra) {
  const q = query(f);
  for (const [k, v] of Object.entries(extra || {})) { q.set(k, v); }
  const r = await fetch(`/api/v1/reports/${report}?${q}`, { headers: { Authorization: `Bearer ${state.token}` } });
  const body = await r.json();
  if (!r.ok) { throw new Error(`${report}: ${body.code} ${body.message}`); }
  return body;
}

// ---- Rendering helpers ----
function kpis(section, items) {
  const box = section.querySelector('.kpis');
  box.replaceChildren();
  for (const [key, label, text] of items) {
    const d = document.createElement('div');
    d.className = 'kpi';
    const s = document.createElement('span');
    s.textContent = label;
    const b = document.createElement('b');
    b.dataset.kpi = `${section.id}.${key}`;
    b.textContent = text;
    d.append(s, b);
    box.append(d);
  }
}

function table(section, header, rows) {
  const t = section.querySelector('table');
  t.replaceChildren();
  const head = t.insertRow();
  for (const h of header) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  for (const row of rows) {
    const tr = t.insertRow();
    for (const cell of row) { tr.insertCell().textContent = cell; }
  }
}

function chart(section, option) {
  const el = section.querySelector('.chart');
  if (!state.charts[section.id]) { state.charts[section.id] = echarts.init(el, null, { renderer: 'canvas' }); }
  state.charts[section.id].setOption(Object.assign({ animation: false, tooltip: { trigger: 'axis' }, grid: { left: 60, right: 20, top: 30, bottom: 30 } }, option), true);
}

// ---- The reports ----
const render = {
  funnel(r) {
    const s = document.getElementById('funnel');
    kpis(s, [['opportunities', '商机', String(int(r.opportunities))], ['won', '赢单', String(int(r.won))],
      ['lost', '输单', String(int(r.lost))], ['win_rate', '赢率', pct(r.win_rate_percent)]]);
    const open = r.stages.filter((x) => x.kind !== 'LOST');
    chart(s, { tooltip: { trigger: 'item' }, series: [{ type: 'funnel', sort: 'none', left: '10%', width: '80%', label: { formatter: '{b}: {c}' },
      data: open.map((x) => ({ name: x.stage_name, value: int(x.reached) })) }] });
    table(s, ['阶段', '到达', '金额', '转化率', '平均停留(天)'], r.stages.map((x) => [x.stage_name, String(int(x.reached)),
      money(x.amount_minor), pct(x.conversion_percent), (int(x.average_stay_seconds) / 86400).toFixed(1)]));
  },
  channels(r) {
    const s = document.getElementById('channels');
    const sum = (k) => r.channels.reduce((a, x) => a + int(x[k]), 0);
    kpis(s, [['leads', '线索', String(sum('leads'))], ['customers', '新客户', String(sum('customers'))],
      ['deals_won', '成交', String(sum('deals_won'))], ['cost', '渠道费用', money(sum('cost_minor'))]]);
    const names = r.channels.map((x) => channelName[x.channel] || x.channel);
    chart(s, { legend: { top: 0 }, xAxis: { type: 'category', data: names }, yAxis: { type: 'value' },
      series: [['线索', 'leads'], ['客户', 'customers'], ['成交', 'deals_won']].map(([n, k]) => ({ name: n, type: 'bar', data: r.channels.map((x) => int(x[k])) })) });
    table(s, ['渠道', '线索', '转客户', '新客户', '成交客户', '成交金额', '费用', '获客成本'], r.channels.map((x) => [
      channelName[x.channel] || x.channel, String(int(x.leads)), pct(x.lead_conversion_percent), String(int(x.customers)),
      pct(x.deal_conversion_percent), money(x.won_amount_minor), money(x.cost_minor), money(x.cost_per_customer_minor)]));
  },
  team(r) {
    const s = document.getElementById('team');
    const t = r.total;
    kpis(s, [['follow_ups', '跟进', String(int(t.follow_ups))], ['tasks_done', '完成任务', String(int(t.tasks_done))],
      ['deals_won', '赢单', String(int(t.deals_won))], ['win_rate', '赢率', pct(t.win_rate_percent)],
      ['collected', '回款', money(t.collected_minor)]]);
    chart(s, { legend: { top: 0 }, xAxis: { type: 'category', data: r.reps.map((x) => x.owner_id || '公海') }, yAxis: { type: 'value' },
      series: [['成交金额', 'won_amount_minor'], ['回款', 'collected_minor']].map(([n, k]) => ({ name: n, type: 'bar', data: r.reps.map((x) => int(x[k]) / 100) })) });
    table(s, ['销售', '团队', '跟进', '完成', '逾期', '赢', '输', '赢率', '成交金额', '回款'], r.reps.map((x) => [x.owner_id || '公海', x.team_id,
      String(int(x.follow_ups)), String(int(x.tasks_done)), String(int(x.tasks_overdue)), String(int(x.deals_won)),
      String(int(x.deals_lost)), pct(x.win_rate_percent), money(x.won_amount_minor), money(x.collected_minor)]));
  },
  value(r) {
    const s = document.getElementById('value');
    kpis(s, [['customers', '客户', String(int(r.customers))], ['paying_customers', '回款客户', String(int(r.paying_customers))],
      ['collected', '回款', money(r.collected_minor)]]);
    chart(s, { tooltip: { trigger: 'item' }, legend: { type: 'scroll', orient: 'vertical', left: 0 },
      series: [{ type: 'pie', radius: ['35%', '65%'], center: ['60%', '50%'], data: r.by_region.map((x) => ({ name: x.key || '未填写', value: int(x.collected_minor) / 100 })) }] });
    table(s, ['客户', '地区', '行业', 'R(天)', 'F', 'M', 'RFM', '分层'], r.high_value.map((x) => [x.name, x.region, x.industry,
      String(int(x.recency_days)), String(int(x.frequency)), money(x.monetary_minor), `${x.r_score}${x.f_score}${x.m_score}`, x.segment]));
  },
  churn(r) {
    const s = document.getElementById('churn');
    kpis(s, [['churned', '流失客户', String(int(r.churned))], ['new_customers', '新客户', String(int(r.new_customers))]]);
    chart(s, { legend: { top: 0 }, xAxis: { type: 'category', data: r.periods.map((x) => day(x.start_time)) }, yAxis: { type: 'value' },
      series: [{ name: '流失', type: 'line', data: r.periods.map((x) => int(x.churned)) }, { name: '新增', type: 'line', data: r.periods.map((x) => int(x.new_customers)) }] });
    table(s, ['流失原因', '客户数'], r.by_reason.map((x) => [x.reason || '未填写', String(int(x.churned))]));
  },
  tickets(r) {
    const s = document.getElementById('tickets');
    kpis(s, [['opened', '新建', String(int(r.opened))], ['closed', '关闭', String(int(r.closed))],
      ['breaches', '超时', String(int(r.first_response_breaches) + int(r.resolution_breaches))],
      ['compliance', '解决达标率', pct(r.resolution_compliance_percent)]]);
    chart(s, { legend: { top: 0 }, xAxis: { type: 'category', data: r.periods.map((x) => day(x.start_time)) }, yAxis: { type: 'value' },
      series: [['新建', 'opened'], ['关闭', 'closed'], ['解决超时', 'resolution_breaches']].map(([n, k]) => ({ name: n, type: 'bar', data: r.periods.map((x) => int(x[k])) })) });
    table(s, ['期间', '新建', '关闭', '响应超时', '解决超时'], r.periods.filter((x) => int(x.opened) + int(x.closed) > 0).map((x) => [day(x.start_time),
      String(int(x.opened)), String(int(x.closed)), String(int(x.first_response_breaches)), String(int(x.resolution_breaches))]));
  },
  receivables(r) {
    const s = document.getElementById('receivables');
    kpis(s, [['planned', '计划回款', money(r.planned_minor)], ['collected', '实际回款', money(r.collected_minor)],
      ['collection', '回款率', pct(r.collection_percent)]]);
    chart(s, { legend: { top: 0 }, xAxis: { type: 'category', data: r.periods.map((x) => day(x.start_time)) }, yAxis: { type: 'value' },
      series: [['计划', 'planned_minor'], ['实际', 'collected_minor']].map(([n, k]) => ({ name: n, type: 'bar', data: r.periods.map((x) => int(x[k]) / 100) })) });
    table(s, ['期间', '计划', '实际', '笔数'], r.periods.map((x) => [day(x.start_time), money(x.planned_minor), money(x.collected_minor), String(int(x.payments))]));
  },
};

async function load() {
  const f = params();
  state.token = f.token;
  for (const k of ['from', 'to', 'group_by', 'team']) { document.getElementById(`f-${k}`).value = f[k]; }
  document.getElementById('f-as_of').value = f.as_of.slice(0, 19);
  if (!state.token) {
    document.getElementById('token-box').hidden = false;
    document.body.dataset.state = 'need-token';
    document.getElementById('status').textContent = '请输入令牌 (crmctl token)';
    return;
  }
  sessionStorage.setItem('crm-token', state.token);
  document.body.dataset.state = 'loading';
  const status = document.getElementById('status');
  status.className = '';
  status.textContent = '加载中…';
  const errors = [];
  await Promise.all(Object.keys(render).map(async (name) => {
    try {
      render[name](await api(name, f));
    } catch (e) {
      errors.push(e.message);
    }
  }));
  const asOf = f.as_of ? `截至 ${f.as_of.replace('T', ' ')}` : `截至 ${new Date().toLocaleString('zh-CN', { hour12: false })}`;
  status.textContent = errors.length ? errors.join('; ') : asOf;
  status.className = errors.length ? 'error' : '';
  document.body.dataset.state = errors.length ? 'error' : 'ready';
}

function apply() {
  const p = new URLSearchParams();
  for (const k of ['from', 'to', 'group_by', 'team', 'as_of']) {
    const v = document.getElementById(`f-${k}`).value;
    if (v) { p.set(k, v); }
  }
  const typed = document.getElementById('f-token').value;
  if (typed) { sessionStorage.setItem('crm-token', typed); }
  location.hash = p.toString();  // the token stays in this tab's session storage
}

async function downloadCsv(ev) {
  const b = ev.target.closest('button[data-csv]');
  if (!b) { return; }
  const q = query(params());
  q.set('table', b.dataset.table);
  const r = await fetch(`/api/v1/reports/${b.dataset.csv}.csv?${q}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!r.ok) { document.getElementById('status').textContent = `CSV: ${r.status}`; return; }
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await r.blob());
  a.download = `${b.dataset.csv}.csv`;
  a.click();
}

document.getElementById('apply').addEventListener('click', apply);
document.querySelector('main').addEventListener('click', downloadCsv);
window.addEventListener('hashchange', load);
window.addEventListener('resize', () => Object.values(state.charts).forEach((c) => c.resize()));
load();
