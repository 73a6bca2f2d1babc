// Request and response bodies, field for field those of the published OpenAPI document
// (/v1/openapi.json). Answers may gain optional fields; treat unknown ones as optional.

export type JobStatus =
  | "pending" | "processing" | "assigned" | "unassigned" | "in_progress" | "completed" | "failed" | "cancelled";
export type StopStatus = "pending" | "completed" | "failed" | "skipped" | "unroutable" | "cancelled";
export type StopOutcome = "completed" | "failed" | "skipped";
export const SETTLED: ReadonlySet<JobStatus> = new Set([
  "assigned", "unassigned", "in_progress", "completed", "failed", "cancelled",
]);

export interface TimeWindow {
  start: string;
  end: string;
}

export interface ImportStop {
  external_stop_id: string;
  address?: string | null;
  lat?: number | null;
  lng?: number | null;
  label?: string | null;
  parcel_count?: number;
  time_window?: TimeWindow | null;
  service_minutes?: number | null;
  notes?: string | null;
  phone?: string | null;
  email?: string | null;
  time_windows?: TimeWindow[] | null;
  skills?: string[] | null;
  priority?: number | null;
  [extra: string]: unknown;
}

export interface Depot {
  address?: string | null;
  lat?: number | null;
  lng?: number | null;
}

/** One vehicle of a fleet import (instead of `driver_email`). */
export interface Vehicle {
  driver_email: string;
  capacity?: number | null;
  shift_start?: string | null;
  shift_end?: string | null;
  start?: Depot | null;
  end?: Depot | null;
  max_stops?: number | null;
  max_duration_minutes?: number | null;
  skills?: string[] | null;
}

export interface ImportJob {
  external_job_id: string;
  title: string;
  driver_email?: string | null;
  stops: ImportStop[];
  depot?: Depot | null;
  return_to_depot?: boolean;
  start_time?: string | null;
  vehicle_capacity?: number | null;
  vehicles?: Vehicle[] | null;
  [extra: string]: unknown;
}

export interface Token {
  access_token: string;
  token_type?: string;
  expires_in: number;
}

export interface Driver {
  email: string;
  name?: string | null;
}

export interface Optimization {
  total_distance_km: number;
  total_duration_minutes: number;
  total_duration_seconds?: number | null;
  solver?: string | null;
  matrix_provider?: string | null;
}

export interface ProofOfDelivery {
  recipient_name?: string | null;
  signature_url?: string | null;
  photo_urls?: string[];
}

export interface Stop {
  external_stop_id: string;
  sequence?: number | null;
  status: StopStatus;
  address?: string | null;
  label?: string | null;
  parcel_count?: number | null;
  lat?: number | null;
  lng?: number | null;
  geocode_precision?: string | null;
  geocode_provider?: string | null;
  eta?: string | null;
  distance_from_previous_km?: number | null;
  duration_from_previous_minutes?: number | null;
  time_window?: TimeWindow | null;
  status_at?: string | null;
  reason?: string | null;
  notes?: string | null;
  proof_of_delivery?: ProofOfDelivery | null;
  time_windows?: TimeWindow[] | null;
  skills?: string[] | null;
  priority?: number | null;
  vehicle?: number | null;
  driver_email?: string | null;
  route_sequence?: number | null;
}

export interface RouteTotals {
  total_distance_km: number;
  total_duration_minutes: number;
  total_duration_seconds?: number | null;
}

/** One vehicle's route: its driver, its stops' external_stop_ids in visiting order, its totals. */
export interface Route {
  vehicle: number;
  driver?: Driver | null;
  stops: string[];
  parcels?: number | null;
  optimization: RouteTotals;
  start_time?: string | null;
  end_time?: string | null;
}

export interface UnroutedStop {
  external_stop_id: string;
  reason?: string | null;
  address?: string | null;
}

export interface JobWarning {
  code: string;
  external_stop_id?: string | null;
  message: string;
}

export interface Job {
  job_id: string;
  external_job_id: string;
  title?: string | null;
  status: JobStatus;
  version?: number | null;
  spec_version?: number | null;
  driver?: Driver | null;
  driver_email?: string | null;
  stop_count: number;
  status_counts: Record<string, number>;
  optimization?: Optimization | null;
  stops: Stop[];
  routes?: Route[];
  vehicles?: Record<string, unknown>[] | null;
  unrouted_stops?: UnroutedStop[];
  warnings?: JobWarning[];
  failure?: Record<string, unknown> | null;
  cancellation?: Cancellation | null;
  start_time?: string | null;
  created_at?: string | null;
  updated_at?: string | null;
}

export interface Cancellation {
  reason?: string | null;
  cancelled_at?: string | null;
}

export interface JobPage {
  jobs: Job[];
  next_cursor?: string | null;
}

export interface JobLinks {
  job: string;
}

export interface ImportAccepted {
  job_id: string;
  external_job_id: string;
  status: JobStatus;
  links: JobLinks;
}

export interface StopStatusAccepted {
  job_id: string;
  external_stop_id: string;
  status: StopOutcome;
  status_at: string;
  event_id: string;
}

export interface StopStatusUpdate {
  occurred_at?: string | Date;
  reason?: string;
  notes?: string;
  recipient_name?: string;
  signature_url?: string;
  photo_urls?: string[];
}

export interface ListJobsOptions {
  status?: JobStatus;
  updatedSince?: string | Date;
  driverEmail?: string;
  pageSize?: number;
}

// --- webhook endpoints (/v1/integration-webhooks) ----------------------------------------------

export type WebhookEvent =
  | "job.routed" | "job.failed" | "job.assigned" | "job.in_progress" | "job.completed"
  | "job.updated" | "job.cancelled" | "stop.status_changed";

/** An endpoint as listed and read; its secret is never shown again. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  events: WebhookEvent[];
  description?: string | null;
  status: "active" | "disabled";
  disabled_reason?: string | null;
  created_at: string;
  updated_at: string;
  previous_secret_valid_until?: string | null;
}

/** The answer of create and rotate-secret: the only place the signing secret (whsec_…) appears. */
export interface WebhookEndpointWithSecret {
  id: string;
  url: string;
  events: WebhookEvent[];
  description?: string | null;
  status: "active" | "disabled";
  disabled_reason?: string | null;
  created_at: string;
  updated_at: string;
  previous_secret_valid_until?: string | null;
  secret: string;
}

export interface WebhookAttempt {
  at: string;
  status_code?: number | null;
  latency_ms: number;
  error?: string | null;
  response?: string | null;
}

export interface WebhookDelivery {
  id: string;
  webhook_id: string;
  event_type: string;
  job_id?: string | null;
  status: "pending" | "succeeded" | "failed";
  attempt_count: number;
  next_attempt_at?: string | null;
  created_at: string;
  payload: Record<string, unknown>;
  attempts: WebhookAttempt[];
}

export interface WebhookDeliveryPage {
  deliveries: WebhookDelivery[];
  next_cursor?: string | null;
}

export interface WebhookDeliveryScheduled {
  delivery_id: string;
  webhook_id: string;
  event_type?: string | null;
  status?: string | null;
}

export interface WebhookEndpointChange {
  url?: string;
  events?: WebhookEvent[];
  description?: string | null;
  status?: "active" | "disabled";
}

export interface ReplanOptions {
  /** where the driver is now */
  currentLocation?: { lat: number; lng: number };
  /** when the remaining route starts (default now) */
  at?: Date | string;
}
