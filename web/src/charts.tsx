// The session page's two charts, drawn with Chart.js: the time the session
// spent running and paused, and its observation results by outcome.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import { RESULT_STATUSES, type ResultStatus } from './api.js';
import { formatDuration } from './ui.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);
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

export function ResultsChart({ counts }: { counts: Record<ResultStatus, number> }) {
  const values = RESULT_STATUSES.map((s) => counts[s] ?? 0);
  const key = values.join(',');
  const config = useMemo<BarConfig>(
    () => ({
      type: 'bar',
      data: {
        labels: [...RESULT_STATUSES],
        datasets: [
          {
            data: values,
            backgroundColor: RESULT_STATUSES.map((s) => RESULT_COLOURS[s]),
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
      },
      // the values, compared by their text: a new report with the same counts keeps the chart as it is
    }),
    [key],
  );
  return <BarChart config={config} label={RESULT_STATUSES.map((s) => `${s} ${counts[s]}`).join(', ')} />;
}
