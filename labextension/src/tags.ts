/**
 * Cell roles as `metadata.tags` (the list papermill and JupyterLab's tag editor use): reading a
 * cell's role and giving it another, with the tag grammar of nbops/tags.py.
 */

export type Role =
  'step' | 'test' | 'serve' | 'metrics' | 'parameters' | 'setup' | 'skip';

export const ROLES: readonly Role[] = [
  'step',
  'test',
  'serve',
  'metrics',
  'parameters',
  'setup',
  'skip'
];

/** Tags without a name and the role they give, nbops's own and the dialects it accepts. */
const BARE_TAGS: Record<string, Role> = {
  parameters: 'parameters',
  setup: 'setup',
  test: 'test',
  metrics: 'metrics',
  serve: 'serve',
  skip: 'skip',
  'pipeline-parameters': 'parameters',
  'injected-parameters': 'parameters',
  imports: 'setup',
  functions: 'setup',
  'pipeline-metrics': 'metrics',
  'skip-execution': 'skip'
};

const PREFIXED_ROLES: Record<string, Role> = {
  step: 'step',
  block: 'step',
  test: 'test',
  serve: 'serve'
};

/** `after:`/`prev:` only mean something on a step's first cell. */
const ORDERING_PREFIXES = ['after', 'prev'];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const PYTHON_KEYWORDS = new Set(
  (
    'False None True and as assert async await break class continue def del elif else except ' +
    'finally for from global if import in is lambda nonlocal not or pass raise return try ' +
    'while with yield'
  ).split(' ')
);

export interface ICellRole {
  role: Role;
  /** The step's name, or the name a test or serve tag carries. */
  name: string | null;
  tag: string;
}

function prefixOf(tag: string): [string, string] | null {
  const at = tag.indexOf(':');
  return at < 0 ? null : [tag.slice(0, at), tag.slice(at + 1).trim()];
}

function isRoleTag(tag: string): boolean {
  const trimmed = tag.trim();
  if (trimmed in BARE_TAGS) {
    return true;
  }
  const parts = prefixOf(trimmed);
  return parts !== null && parts[0] in PREFIXED_ROLES;
}

function isOrderingTag(tag: string): boolean {
  const parts = prefixOf(tag.trim());
  return parts !== null && ORDERING_PREFIXES.includes(parts[0]);
}

/** The first role the tags give (nbops reports a second one as a diagnostic). */
export function roleOf(tags: readonly string[]): ICellRole | null {
  for (const raw of tags) {
    const tag = raw.trim();
    if (tag in BARE_TAGS) {
      return { role: BARE_TAGS[tag], name: null, tag };
    }
    const parts = prefixOf(tag);
    if (parts !== null && parts[0] in PREFIXED_ROLES) {
      return { role: PREFIXED_ROLES[parts[0]], name: parts[1] || null, tag };
    }
  }
  return null;
}

/** Why `name` cannot name a step, or null when it can. */
export function stepNameProblem(name: string): string | null {
  if (name === '') {
    return 'A step needs a name.';
  }
  if (!IDENTIFIER.test(name) || PYTHON_KEYWORDS.has(name)) {
    return `'${name}' is not a Python identifier: use letters, digits and _, not starting with a digit.`;
  }
  return null;
}

/**
 * The tags with every role tag replaced by `role` (none: the cell continues the section above).
 * Other tools' tags stay, in order; `after:` stays only on a step.
 */
export function withRole(
  tags: readonly string[],
  role: Role | null,
  name: string | null = null
): string[] {
  if (role === 'step' && (name === null || stepNameProblem(name) !== null)) {
    throw new Error(stepNameProblem(name ?? '') ?? 'A step needs a name.');
  }
  const kept = tags.filter(
    tag => !isRoleTag(tag) && (role === 'step' || !isOrderingTag(tag))
  );
  if (role === null) {
    return kept;
  }
  const tag = role === 'step' ? `step:${name}` : role;
  return [tag, ...kept.filter(t => t !== tag)];
}

/** A step name not taken yet: `base`, else `base_2`, `base_3`... */
export function freeStepName(base: string, taken: readonly string[]): string {
  const cleaned = base
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .replace(/^(\d)/, 'step_$1');
  const root =
    cleaned === '' || PYTHON_KEYWORDS.has(cleaned) ? 'step' : cleaned;
  if (!taken.includes(root)) {
    return root;
  }
  let n = 2;
  while (taken.includes(`${root}_${n}`)) {
    n += 1;
  }
  return `${root}_${n}`;
}

const OPTION_LINE = /^#\|\s*nbops\s*:\s*(.*)$/;

/**
 * Tags written as `#| nbops: step:train` lines: the cell's leading `#|` lines, or those right
 * after a first-line cell magic (`%%time`), which Jupyter needs first (as nbops reads them).
 */
export function optionLineTags(source: string): string[] {
  const found: string[] = [];
  const lines = source.split('\n');
  const start = lines.length > 0 && lines[0].startsWith('%%') ? 1 : 0;
  for (const line of lines.slice(start)) {
    if (!line.startsWith('#|')) {
      break;
    }
    const match = OPTION_LINE.exec(line.trim());
    if (match) {
      found.push(...match[1].split(/[\s,]+/).filter(t => t !== ''));
    }
  }
  return found;
}
