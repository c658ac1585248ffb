// Package reporter carries device reports back into the system. The
// manager's report endpoint publishes each report to the reports topic
// (keyed by device ID, so a device's reports stay in order); the
// reporter, a watermill Router in a consumer group on that topic (scale
// out by partitions), validates each report and appends a device event
// to the device events topic, which the managers fold into their report
// projections. Reports it cannot accept go to a poison topic, with the
// reason; nothing else is lost.
package reporter
