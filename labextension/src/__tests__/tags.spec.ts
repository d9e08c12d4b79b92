import { leanNotebook } from '../notebook';
import {
  freeStepName,
  optionLineTags,
  roleOf,
  stepNameProblem,
  withRole
} from '../tags';

describe('roleOf', () => {
  it('reads nbops tags and the dialects nbops accepts', () => {
    expect(roleOf(['step:train'])).toEqual({
      role: 'step',
      name: 'train',
      tag: 'step:train'
    });
    expect(roleOf(['block:train'])?.role).toBe('step');
    expect(roleOf(['pipeline-parameters'])?.role).toBe('parameters');
    expect(roleOf(['skip-execution'])?.role).toBe('skip');
    expect(roleOf(['serve:score/v1'])).toEqual({
      role: 'serve',
      name: 'score/v1',
      tag: 'serve:score/v1'
    });
  });

  it('ignores other tools tags and after:', () => {
    expect(roleOf(['hide-input', 'after:load'])).toBeNull();
    expect(roleOf([])).toBeNull();
  });
});

describe('withRole', () => {
  it('replaces the role and keeps other tools tags in order', () => {
    expect(
      withRole(['hide-input', 'step:train', 'remove-output'], 'test')
    ).toEqual(['test', 'hide-input', 'remove-output']);
  });

  it('names steps and keeps after: on them only', () => {
    expect(withRole(['test', 'after:load'], 'step', 'train')).toEqual([
      'step:train',
      'after:load'
    ]);
    expect(withRole(['step:report', 'after:evaluate'], 'skip')).toEqual([
      'skip'
    ]);
  });

  it('removes every role tag, aliases included, for no role', () => {
    expect(withRole(['imports', 'pipeline-metrics', 'keep-me'], null)).toEqual([
      'keep-me'
    ]);
  });

  it('refuses a step without a valid name', () => {
    expect(() => withRole([], 'step', null)).toThrow('A step needs a name.');
    expect(() => withRole([], 'step', '2fast')).toThrow(
      "'2fast' is not a Python identifier"
    );
  });

  it('does not repeat a tag already there', () => {
    expect(withRole(['metrics', 'metrics'], 'metrics')).toEqual(['metrics']);
  });
});

describe('step names', () => {
  it('accepts identifiers only', () => {
    expect(stepNameProblem('train_2')).toBeNull();
    expect(stepNameProblem('')).toBe('A step needs a name.');
    expect(stepNameProblem('class')).toContain('not a Python identifier');
    expect(stepNameProblem('my step')).toContain('not a Python identifier');
  });

  it('suggests a free name from a heading', () => {
    expect(freeStepName('Train', [])).toBe('train');
    expect(freeStepName('Feature engineering!', [])).toBe(
      'feature_engineering'
    );
    expect(freeStepName('train', ['train', 'train_2'])).toBe('train_3');
    expect(freeStepName('2. Load', [])).toBe('step_2_load');
    expect(freeStepName('***', [])).toBe('step');
  });
});

describe('optionLineTags', () => {
  it('reads leading #| nbops: lines only', () => {
    expect(
      optionLineTags('#| nbops: step:train after:load\nx = 1\n#| nbops: skip')
    ).toEqual(['step:train', 'after:load']);
    expect(optionLineTags('x = 1')).toEqual([]);
  });

  it('reads them right after a first-line cell magic, as nbops does', () => {
    expect(optionLineTags('%%time\n#| nbops: step:fit\nfit()')).toEqual([
      'step:fit'
    ]);
    expect(optionLineTags('#| nbops: step:fit\n%%time\nfit()')).toEqual([
      'step:fit'
    ]);
  });
});

describe('leanNotebook', () => {
  it('drops outputs and attachments but keeps ids, tags and sources', () => {
    const lean = leanNotebook({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'python3' } },
      cells: [
        {
          cell_type: 'code',
          id: 'a',
          metadata: { tags: ['step:load'] },
          source: 'x = 1',
          outputs: [{ output_type: 'stream', text: 'big' }],
          execution_count: 7
        },
        {
          cell_type: 'markdown',
          id: 'b',
          metadata: {},
          source: '# hi',
          attachments: { 'a.png': {} }
        }
      ]
    });
    expect(lean).toEqual({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { kernelspec: { name: 'python3' } },
      cells: [
        {
          cell_type: 'code',
          id: 'a',
          metadata: { tags: ['step:load'] },
          source: 'x = 1',
          outputs: [],
          execution_count: null
        },
        { cell_type: 'markdown', id: 'b', metadata: {}, source: '# hi' }
      ]
    });
  });
});
