// The session page's two charts, drawn with Chart.js: the time the session
// spent running and paused, and its harness and observation results by outcome.

import {
  BarController,
  Legend,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { RESULT_STATUSES, type ResultSets, type ResultStatus } from './api.js';
import { formatDuration } from './ui.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily || 'system-ui, sans-serif';
Chart.defaults.color = '#475569';

const RESULT_COLOURS: Record<ResultStatus, string> = {
  PASS: '#16a34a',
  FAIL: '#dc2626',
  TIMEOUT: '#ea580c',
  NOT_RUN: '#94a3b8',
};

type BarConfig = ChartConfiguration<'bar', number[], string>;

/** A canvas whose chart is made once and then updated in place as `config` changes. */
function BarChart({ config, label }: { config: BarConfig; label: string }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<'bar', number[], string> | null>(null);
  useEffect(() => {
    if (!canvas.current) return;
    chart.current = new Chart(canvas.current, config);
    return () => {
      chart.current?.destroy();
      chart.current = null;
    };
    // made once: later configs only replace its data and options, below
  }, []);
  useEffect(() => {
    const current = chart.current;
    if (!current) return;
    current.data = config.data;
    if (config.options) current.options = config.options;
    current.update('none');
  }, [config]);
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

const common = {
  animation: false,
  responsive: true,
  maintainAspectRatio: false,
  plugins: { legend: { display: false } },
} as const;

export function TimeChart({ runningMs, pausedMs }: { runningMs: number; pausedMs: number }) {
  const config = useMemo<BarConfig>(
    () => ({
      type: 'bar',
      data: {
        labels: ['running', 'paused'],
        datasets: [{ data: [runningMs, pausedMs], backgroundColor: ['#2563eb', '#d97706'], borderRadius: 4 }],
      },
      options: {
        ...common,
        indexAxis: 'y',
        scales: {
          x: { beginAtZero: true, ticks: { callback: (value) => formatDuration(Number(value)) } },
          y: { grid: { display: false } },
        },
        plugins: {
          ...common.plugins,
          tooltip: { callbacks: { label: (item) => formatDuration(item.parsed.x) } },
        },
      },
    }),
    [runningMs, pausedMs],
  );
  return (
    <BarChart
      config={config}
      label={`Time running ${formatDuration(runningMs) || '0 ms'}, paused ${formatDuration(pausedMs) || '0 ms'}`}
    />
  );
}

/** Each outcome's harness results (solid) beside its observations (lighter). */
export function ResultsChart({ counts }: { counts: ResultSets }) {
  const harness = RESULT_STATUSES.map((s) => counts.harness[s] ?? 0);
  const observations = RESULT_STATUSES.map((s) => counts.observations[s] ?? 0);
  const key = [...harness, ...observations].join(',');
  const config = useMemo<BarConfig>(
    () => ({
      type: 'bar',
      data: {
        labels: [...RESULT_STATUSES],
        datasets: [
          {
            label: 'harness',
            data: harness,
            backgroundColor: RESULT_STATUSES.map((s) => RESULT_COLOURS[s]),
            borderRadius: 4,
          },
          {
            label: 'observations',
            data: observations,
            backgroundColor: RESULT_STATUSES.map((s) => `${RESULT_COLOURS[s]}80`),
            borderColor: RESULT_STATUSES.map((s) => RESULT_COLOURS[s]),
            borderWidth: 1,
            borderRadius: 4,
          },
        ],
      },
      options: {
        ...common,
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 } },
          x: { grid: { display: false } },
        },
        plugins: {
          legend: {
            display: true,
            position: 'bottom',
            labels: { boxWidth: 12, color: '#475569', generateLabels: legendLabels },
          },
        },
      },
      // the values, compared by their text: a new report with the same counts keeps the chart as it is
    }),
    [key],
  );
  const text = (name: string, values: number[]) =>
    `${name}: ${RESULT_STATUSES.map((s, i) => `${s} ${values[i]}`).join(', ')}`;
  return <BarChart config={config} label={`${text('Harness', harness)}; ${text('observations', observations)}`} />;
}

/** The legend names the two sets in neutral colours, since each bar is coloured by its outcome. */
function legendLabels(chart: Chart) {
  return chart.data.datasets.map((dataset, i) => ({
    text: dataset.label ?? '',
    fillStyle: i === 0 ? '#475569' : '#47556980',
    strokeStyle: '#475569',
    lineWidth: 1,
    datasetIndex: i,
    hidden: !chart.isDatasetVisible(i),
  }));
}
