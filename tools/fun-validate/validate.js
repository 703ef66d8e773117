// Runs the fun tool's own template validation (@alicloud/fun 3.6.24) on the templates named on the
// command line. Exit 0: valid. Exit 1: invalid, with fun's own messages on stdout.
const validate = require("@alicloud/fun/lib/validate/validate");

validate(...process.argv.slice(2))
  .then(() => console.log("template is valid"))
  .catch((error) => {
    console.log(error.message);
    process.exit(1);
  });
