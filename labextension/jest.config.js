// Unit tests of the sidebar's pure logic (graph model, status reducer, tags), as the
// JupyterLab extension template runs them: Jest with ts-jest.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: '__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': [
      'ts-jest',
      {
        tsconfig: {
          module: 'commonjs',
          esModuleInterop: true,
          resolveJsonModule: true,
          strict: true,
          target: 'ES2019',
          types: ['jest']
        }
      }
    ]
  }
};
