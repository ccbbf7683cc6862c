// test_ready data in each shape real clients send.

/** The seed's shape, the runner docs' shape, and what a DPCTF page's harness sends. */
export const TEST_READY_SHAPES = {
  seed: { test_path: '/wave-demo/demo-1.html', test_name: 'Demo 1', test_description: 'the first demo' },
  docs: {
    path: '/wave-demo/demo-2.html',
    title: 'Demo 2',
    description: 'the second demo',
    params: { duration: 10, playback_mode: 'vod' },
    observations: [{ id: 'OF-1', name: 'Every frame is shown', description: 'count the frames', extra: true }],
  },
  // TEST_INFO of a page, with the path and params the harness adds before sending
  dpctf: {
    id: 'sequential-track-playback',
    title: 'Sequential Track Playback',
    description: 'a track is played from the beginning',
    code: 'sequential-track-playback.html',
    path: 'wave-demo/demo-3.html',
    params: { minBufferDuration: 30000, playout: null },
    observations: [{ id: 'OF-2', name: 'No stall' }],
    vendor_field: { kept: ['verbatim', 1] },
  },
  // a page's TEST_INFO alone, without the harness's additions
  dpctfBare: {
    code: 'regular-playback.html',
    id: 'regular-playback',
    title: 'Regular Playback',
    description: 'plays',
  },
};
