/** A React hook re-rendering its component whenever one of the model's signals is emitted. */
import type { ISignal } from '@lumino/signaling';
import { useEffect, useState } from 'react';

export function useSignals<T>(
  signals: ReadonlyArray<ISignal<any, any>>,
  read: () => T
): T {
  const [, setTick] = useState(0);
  useEffect(() => {
    const bump = (): void => setTick(t => t + 1);
    for (const signal of signals) {
      signal.connect(bump);
    }
    return () => {
      for (const signal of signals) {
        signal.disconnect(bump);
      }
    };
    // The signals are the model's, fixed for the component's life.
  }, []);
  return read();
}
