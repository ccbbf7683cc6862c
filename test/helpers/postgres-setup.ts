// Set up before every test file of the PostgreSQL pass: its databases are
// dropped once its own afterAll hooks (which close its servers) have run.

import { afterAll } from 'vitest';
import { dropTestDatabases } from './backend.js';

afterAll(dropTestDatabases);
