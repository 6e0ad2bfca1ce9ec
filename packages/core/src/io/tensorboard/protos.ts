// The subset of TensorFlow's and TensorBoard's protobuf schemas that a summary writer
// needs (event.proto, summary.proto, tensor.proto, plugins/hparams/{api,plugin_data}.proto),
// with the same field numbers, loaded by protobufjs. No TensorFlow needed.
import protobuf from 'protobufjs';

const PROTO = `
syntax = "proto3";
package tensorboard;

message Event {
  double wall_time = 1;
  int64 step = 2;
  oneof what {
    string file_version = 3;
    Summary summary = 5;
    SessionLog session_log = 7;
  }
}

message SessionLog {
  enum SessionStatus { STATUS_UNSPECIFIED = 0; START = 1; STOP = 2; CHECKPOINT = 3; }
  SessionStatus status = 1;
  string checkpoint_path = 2;
  string msg = 3;
}

message Summary {
  message Value {
    string node_name = 7;
    string tag = 1;
    SummaryMetadata metadata = 9;
    oneof value {
      float simple_value = 2;
      HistogramProto histo = 5;
      TensorProto tensor = 8;
    }
  }
  repeated Value value = 1;
}

message SummaryMetadata {
  message PluginData {
    string plugin_name = 1;
    bytes content = 2;
  }
  PluginData plugin_data = 1;
  string display_name = 2;
  string summary_description = 3;
  int32 data_class = 4;
}

message HistogramProto {
  double min = 1;
  double max = 2;
  double num = 3;
  double sum = 4;
  double sum_squares = 5;
  repeated double bucket_limit = 6 [packed = true];
  repeated double bucket = 7 [packed = true];
}

message TensorShapeProto {
  message Dim { int64 size = 1; string name = 2; }
  repeated Dim dim = 2;
  bool unknown_rank = 3;
}

message TensorProto {
  int32 dtype = 1;
  TensorShapeProto tensor_shape = 2;
  int32 version_number = 3;
  bytes tensor_content = 4;
  repeated float float_val = 5 [packed = true];
  repeated bytes string_val = 8;
}

// google/protobuf/struct.proto, as used by the hparams plugin.
message Value {
  oneof kind {
    int32 null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    ListValue list_value = 6;
  }
}
message ListValue { repeated Value values = 1; }

// tensorboard/plugins/hparams/api.proto and plugin_data.proto
message HParamsPluginData {
  int32 version = 1;
  oneof data {
    Experiment experiment = 2;
    SessionStartInfo session_start_info = 3;
    SessionEndInfo session_end_info = 4;
  }
}
message Experiment {
  string name = 6;
  string description = 1;
  string user = 2;
  double time_created_secs = 3;
  repeated HParamInfo hparam_infos = 4;
  repeated MetricInfo metric_infos = 5;
}
message HParamInfo {
  string name = 1;
  string display_name = 2;
  string description = 3;
  int32 type = 4; // DataType: 1 string, 2 bool, 3 float64
  oneof domain {
    ListValue domain_discrete = 5;
    Interval domain_interval = 6;
  }
}
message Interval { double min_value = 1; double max_value = 2; }
message MetricName { string group = 1; string tag = 2; }
message MetricInfo {
  MetricName name = 1;
  string display_name = 3;
  string description = 4;
  int32 dataset_type = 5; // 1 training, 2 validation
}
message SessionStartInfo {
  map<string, Value> hparams = 1;
  string model_uri = 2;
  string monitor_url = 3;
  string group_name = 4;
  double start_time_secs = 5;
}
message SessionEndInfo {
  int32 status = 1; // 1 success, 2 failure, 3 running
  double end_time_secs = 2;
}
`;

export const root = protobuf.parse(PROTO, { keepCase: true }).root;
export const Event = root.lookupType('tensorboard.Event');
export const Summary = root.lookupType('tensorboard.Summary');
export const HParamsPluginData = root.lookupType('tensorboard.HParamsPluginData');

/** TensorFlow DataType enum values used here. */
export const DT_FLOAT = 1;
export const DT_STRING = 7;
