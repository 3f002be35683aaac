// Copies the non-TypeScript files the compiled code needs (SQL migrations) into dist/.
import { cpSync } from 'node:fs';

cpSync('src/index-store/sql', 'dist/index-store/sql', { recursive: true });
