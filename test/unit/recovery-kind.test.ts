// Step deadlines that grow with a backup's size.
import { describe, expect, it } from 'vitest';
import { sizedDeadline } from '../../src/domain/recovery/kind.js';

const MINUTE = 60_000;

describe('sizedDeadline', () => {
  it('is the default plus an hour per GB of backup file', () => {
    expect(sizedDeadline(undefined)(30 * MINUTE)).toBe(30 * MINUTE);
    expect(sizedDeadline(0)(30 * MINUTE)).toBe(30 * MINUTE);
    expect(sizedDeadline(1024 ** 3)(30 * MINUTE)).toBe(90 * MINUTE);
    expect(sizedDeadline(512 * 1024 ** 2)(10 * MINUTE)).toBe(40 * MINUTE);
    expect(sizedDeadline(10 * 1024 ** 3)(30 * MINUTE)).toBe(630 * MINUTE);
  });
});
