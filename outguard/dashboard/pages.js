// Every page of the dashboard, one module each (see registry.js): importing a module
// registers its page. Add a page with one line here.

import "./live.js";
import "./overview.js";
import "./parties.js";
import "./enforcement.js";
import "./appeals.js";
import "./lists.js";
import "./reports.js";
import "./policy.js";
import "./compliance.js";
import "./deadlines.js";
import "./users.js";
import "./audit.js";

// the small building blocks, for page modules written against the older pages.js
export { fmt, flash, h, table, time } from "./ui.js";
