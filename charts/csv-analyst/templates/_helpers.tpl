{{/* Names, labels, images and the shared pod and container security settings. */}}

{{- define "csv-analyst.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "csv-analyst.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Common labels; call with (dict "ctx" $ "component" "analyst"). */}}
{{- define "csv-analyst.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "csv-analyst.selectorLabels" . }}
{{- end }}

{{- define "csv-analyst.selectorLabels" -}}
app.kubernetes.io/name: {{ include "csv-analyst.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of the run pods the runner-dispatch service creates (see executors/k8s_manifests.py). */}}
{{- define "csv-analyst.runPodLabels" -}}
app.kubernetes.io/name: csv-analyst
app.kubernetes.io/component: run
csv-analyst.io/owner: {{ include "csv-analyst.fullname" . }}
{{- end }}

{{- define "csv-analyst.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{- define "csv-analyst.credentialSecret" -}}
{{- default (printf "%s-credential" (include "csv-analyst.fullname" .)) .Values.credential.existingSecret }}
{{- end }}

{{/* The Secret holding the PostgreSQL capsule store's URL (an existing one, or the chart's). */}}
{{- define "csv-analyst.capsuleStoreSecret" -}}
{{- default (printf "%s-capsule-store" (include "csv-analyst.fullname" .)) .Values.capsuleStore.postgresql.existingSecret }}
{{- end }}

{{/* Refuse capsule store settings that cannot work (the schema checks the same; this says why). */}}
{{- define "csv-analyst.checkCapsuleStore" -}}
{{- $store := .Values.capsuleStore }}
{{- if and (eq $store.type "sqlite") (gt (int .Values.analyst.replicas) 1) }}
{{- fail "analyst.replicas > 1 needs capsuleStore.type=postgresql: the SQLite capsule store is one file on a ReadWriteOnce volume" }}
{{- end }}
{{- if eq $store.type "postgresql" }}
{{- if not (or $store.postgresql.existingSecret $store.postgresql.url) }}
{{- fail "capsuleStore.type=postgresql needs capsuleStore.postgresql.existingSecret (preferred) or capsuleStore.postgresql.url" }}
{{- end }}
{{- if not (or $store.postgresql.cidrs $store.postgresql.podSelector) }}
{{- fail "capsuleStore.type=postgresql needs capsuleStore.postgresql.cidrs or .podSelector: the analyst's NetworkPolicy allows egress only to the database named there" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "csv-analyst.dataClaim" -}}
{{- default (printf "%s-data" (include "csv-analyst.fullname" .)) .Values.data.existingClaim }}
{{- end }}

{{/* Pod-level security: Pod Security "restricted". */}}
{{- define "csv-analyst.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
fsGroup: 65534
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security: Pod Security "restricted". */}}
{{- define "csv-analyst.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checkov exceptions shared by the service pods, each with its reason. */}}
{{- define "csv-analyst.checkovSkips" -}}
{{- if not .digest }}
checkov.io/skip1: CKV_K8S_43=Images built offline are content-tagged; set images.*.digest to pin a registry digest
{{- end }}
{{- end }}
